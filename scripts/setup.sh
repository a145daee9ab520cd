#!/usr/bin/env bash
# Installs everything mailcanary and its test suite need on a fresh Debian machine:
# Debian packages (Dovecot, Postfix, NSD, Prometheus, Alertmanager) and a virtualenv in .venv
# with mailcanary and its test tools. Safe to run again; it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(dovecot-core dovecot-imapd dovecot-lmtpd dovecot-pop3d dovecot-sieve postfix nsd
              prometheus prometheus-alertmanager chromium chromium-driver
              rspamd opendkim opendkim-tools)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
  missing+=(python3-venv)
fi
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: these Debian packages are missing: ${missing[*]}" >&2
    echo "setup: run this script as root, or: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # No system-wide Postfix configuration: the test bed and demo bring their own.
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python3 - <<'PY'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"setup: mailcanary needs Python 3.11 or newer, this is {sys.version.split()[0]}")
PY

if [[ ! -x .venv/bin/python ]]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'
echo "setup: ready ($(.venv/bin/mailcanary --version))"
