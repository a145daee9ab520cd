#!/usr/bin/env bash
# Refreshes the gettext catalogs from the source: extracts every sentence marked for people
# (N_("..."), Text("..."), tr("...")) with Babel and merges it into each language's .po.
# New or changed English sentences arrive untranslated (or fuzzy); translate them in the .po,
# then run tests/test_i18n.py. The .po files are the source: no .mo is committed; they are
# read with Babel when a language other than English is used.
#   ./scripts/i18n.sh            update every catalog
#   ./scripts/i18n.sh init fr    start a catalog for a new language
set -euo pipefail
cd "$(dirname "$0")/.."
PYBABEL=${PYBABEL:-.venv/bin/pybabel}
LOCALE=src/mailcanary/locale
POT=$(mktemp --suffix=.pot)
trap 'rm -f "$POT"' EXIT

"$PYBABEL" -q extract -F babel.cfg -k Text -k tr --no-wrap --sort-by-file --add-location=file \
  --project=mailcanary --copyright-holder="mailcanary developers" \
  --msgid-bugs-address="https://github.com/mailcanary/mailcanary/issues" -o "$POT" .
if [[ ${1:-} == init ]]; then
  "$PYBABEL" init -i "$POT" -d "$LOCALE" -D mailcanary -l "${2:?language code}" --no-wrap
else
  # --previous keeps the old English beside a changed sentence (fuzzy): translate, unfuzzy.
  "$PYBABEL" update -i "$POT" -d "$LOCALE" -D mailcanary --no-wrap --ignore-obsolete --previous
fi
