#!/usr/bin/env bash
# The whole test suite: set-up (idempotent), lint, type check, then pytest against the
# real Dovecot and Postfix the tests start themselves. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
echo "== ruff"; .venv/bin/ruff check src tests bench
echo "== mypy"; .venv/bin/mypy --strict src tests
# A private base temp dir: concurrent pytest runs on one machine would otherwise share
# /tmp/pytest-of-$USER and prune each other's test-bed directories mid-run.
basetemp=$(mktemp -d /tmp/mailcanary-tests.XXXXXX)
echo "== pytest (temp files in $basetemp)"
# Three workers: most tests wait on servers and timeouts, not on the CPU. Each worker starts
# its own test bed on free ports; tests that need a fixed resource share an xdist_group.
# MAILCANARY_TEST_WORKERS=0 runs everything in one process.
.venv/bin/python -m pytest --basetemp="$basetemp" -n "${MAILCANARY_TEST_WORKERS:-3}" \
  --dist loadgroup "$@"
rm -rf "$basetemp"
