#!/usr/bin/env bash
# The demo: sets everything up, starts local demo mail servers (the test bed: Dovecot +
# Postfix on loopback), runs the daemon on them and one `check` of every probe. Within its
# first minute it shows a canary delivered (with its time), a canary filed into Junk (with
# the reason), a wrong password (with its hint) and a wrong port (with the settings
# doctor's suggestion); the status page shows them too. Stop with Ctrl-C.
#   DEMO_SECONDS=N     stop by itself after N seconds (CI: DEMO_SECONDS=30)
#   DEMO_LANG=ja       the demo in Japanese (the daemon's [daemon] language, check --lang)
#   DEMO_LISTEN=H:P    where the daemon listens (default 127.0.0.1:9782)
#   DEMO_SKIP_SETUP=1  skip ./scripts/setup.sh (the test suite, which has run it already)
set -euo pipefail
cd "$(dirname "$0")/.."
listen=${DEMO_LISTEN:-127.0.0.1:9782}
echo "== The status page: http://$listen/status  (open it in a browser; it fills in as the probes run)"
[[ -n "${DEMO_SKIP_SETUP:-}" ]] || ./scripts/setup.sh

demo_dir=$(mktemp -d /tmp/mailcanary-demo.XXXXXX)
config="$demo_dir/mailcanary.toml"
bed_args=(); check_args=()
if [[ -n "${DEMO_LANG:-}" ]]; then
  bed_args=(--language "$DEMO_LANG"); check_args=(--lang "$DEMO_LANG")
fi
.venv/bin/python -m mailcanary.testbed serve --dir "$demo_dir/bed" --write-config "$config" \
  "${bed_args[@]}" >"$demo_dir/testbed.out" 2>&1 &
bed_pid=$!
daemon=
cleanup() {
  [[ -z "$daemon" ]] || { kill -TERM "$daemon" 2>/dev/null || true; wait "$daemon" 2>/dev/null || true; }
  kill "$bed_pid" 2>/dev/null || true
  wait "$bed_pid" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 1 150); do
  [[ -s "$config" ]] && break
  kill -0 "$bed_pid" 2>/dev/null || { cat "$demo_dir/testbed.out" >&2; exit 1; }
  sleep 0.1
done
[[ -s "$config" ]] || { echo "demo: the test bed did not start" >&2; cat "$demo_dir/testbed.out" >&2; exit 1; }
sed -i "s|^listen = .*|listen = \"$listen\"|" "$config"

.venv/bin/mailcanary run --config "$config" 2>"$demo_dir/daemon.log" &
daemon=$!
echo "== The daemon runs: status page http://$listen/status, metrics http://$listen/metrics"
echo "   (its log: $demo_dir/daemon.log; the demo's config: $config)"
echo
echo "== One check of every probe, now. What to look for:"
echo "   alice-to-bob    a canary delivered to bob's inbox, and how long it took"
echo "   alice-to-carol  a canary filed into carol's Junk folder, and why"
echo "   dave            a wrong password, and what to do about it"
echo "   alice-typo      implicit TLS on the STARTTLS port: the doctor's suggestion"
echo
.venv/bin/mailcanary check --config "$config" "${check_args[@]}" || true
echo
echo "== The same on the status page: http://$listen/status"
if [[ -n "${DEMO_SECONDS:-}" ]]; then
  sleep "$DEMO_SECONDS"
  echo "== after ${DEMO_SECONDS}s, GET /api/v1/status:"
  .venv/bin/python - "$listen" <<'PY' || true
import json, sys, urllib.request
doc = json.load(urllib.request.urlopen(f"http://{sys.argv[1]}/api/v1/status", timeout=5))
for t in doc["targets"]:
    state = "ok" if t["ok"] else "no result yet" if t["ok"] is None else f"{t['class']}/{t['reason']}"
    print(f"  {t['probe']:<10} {t['target']:<15} {state:<26} since {t['since']}")
PY
  kill -TERM "$daemon"
  wait "$daemon"
  daemon=
else
  echo "== Ctrl-C stops the demo."
  wait "$daemon"
fi
