#!/usr/bin/env bash
# Sets everything up, starts the local demo mail servers (the test bed: Dovecot + Postfix on
# loopback, two demo accounts, bob's password deliberately wrong), shows one `check`, then
# runs the daemon on them. Metrics: http://127.0.0.1:9782/metrics. Stop with Ctrl-C.
# DEMO_SECONDS=N stops the daemon after N seconds (for unattended runs).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

demo_dir=$(mktemp -d /tmp/mailcanary-demo.XXXXXX)
config="$demo_dir/mailcanary.toml"
.venv/bin/python -m mailcanary.testbed serve --dir "$demo_dir/bed" --write-config "$config" \
  >"$demo_dir/testbed.out" 2>&1 &
bed_pid=$!
cleanup() {
  kill "$bed_pid" 2>/dev/null || true
  wait "$bed_pid" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  [[ -s "$config" ]] && break
  kill -0 "$bed_pid" 2>/dev/null || { cat "$demo_dir/testbed.out" >&2; exit 1; }
  sleep 0.1
done
[[ -s "$config" ]] || { echo "demo: the test bed did not start" >&2; cat "$demo_dir/testbed.out" >&2; exit 1; }

echo "== demo config: $config"
echo "== one check of every probe (bob's password is wrong on purpose):"
.venv/bin/mailcanary check --config "$config" || true
echo
echo "== the daemon (metrics on http://127.0.0.1:9782/metrics, health on /healthz):"
if [[ -n "${DEMO_SECONDS:-}" ]]; then
  .venv/bin/mailcanary run --config "$config" &
  daemon=$!
  sleep "$DEMO_SECONDS"
  echo "== metrics after ${DEMO_SECONDS}s:"
  .venv/bin/python - <<'PY' || true
import urllib.request
body = urllib.request.urlopen("http://127.0.0.1:9782/metrics", timeout=5).read().decode()
print("\n".join(line for line in body.splitlines() if line.startswith("mailcanary_probe_success")))
PY
  kill -TERM "$daemon"
  wait "$daemon"
else
  .venv/bin/mailcanary run --config "$config"
fi
