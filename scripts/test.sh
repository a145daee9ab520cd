#!/usr/bin/env bash
# The whole test suite: set-up (idempotent), lint, type check, then pytest against the
# real Dovecot and Postfix the tests start themselves. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
echo "== ruff"; .venv/bin/ruff check src tests bench
echo "== mypy"; .venv/bin/mypy --strict src tests
echo "== pytest"; .venv/bin/python -m pytest "$@"
