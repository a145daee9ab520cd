"""`DEMO_SECONDS=30 ./scripts/demo.sh`, as CI and a newcomer run it: the status page's URL
comes first, and within the first minute the output shows a delivered canary with its
time, a canary filed into Junk with the reason, a wrong password with its hint and a wrong
port with the settings doctor's suggestion; the status page has a result for every target
and the script exits 0 with nothing left running."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers.daemon_support import free_port

pytestmark = [pytest.mark.testbed, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def test_demo_shows_the_whole_product_within_a_minute() -> None:
    listen = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "DEMO_SECONDS": "30", "DEMO_LISTEN": listen, "DEMO_SKIP_SETUP": "1"}
    started = time.monotonic()
    proc = subprocess.run([str(ROOT / "scripts" / "demo.sh")], env=env, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL, check=False)
    took = time.monotonic() - started
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert took < 60, f"the demo took {took:.0f} s"
    assert out.splitlines()[0].startswith("== The status page: ")
    assert f"http://{listen}/status" in out.splitlines()[0]
    # A delivered canary, with its time.
    assert re.search(r"roundtrip\s+alice-to-bob\s+\S+\s+ok \(inbox\)", out), out
    assert re.search(r"delivered after \d+\.\d\d s", out), out
    # A canary filed into Junk, with the reason.
    assert re.search(r"roundtrip\s+alice-to-carol\s+\S+\s+spam/spam_folder", out), out
    assert "delivered to the junk folder 'Junk'" in out
    # A wrong password, with its hint.
    assert re.search(r"imap\s+dave\s+\S+\s+auth/invalid_credentials", out), out
    assert "The server rejected the username or password" in out
    # A wrong port, with the doctor's suggestion.
    assert re.search(r"imap\s+alice-typo\s+\S+\s+tls/handshake_failed", out), out
    assert re.search(r'suggestion: port = \d+, security = "starttls"', out), out
    # The status page (after 30 s): every target has a result.
    summary = out.split("GET /api/v1/status:")[1]
    assert "no result yet" not in summary, summary
    assert re.search(r"roundtrip\s+alice-to-bob\s+ok", summary), summary
    assert re.search(r"roundtrip\s+alice-to-carol\s+spam/spam_folder", summary), summary
    found = re.search(r"the demo's config: (/tmp/mailcanary-demo\.[^/]+)/", out)
    assert found, out
    leftover = subprocess.run(["pgrep", "-f", found.group(1)], capture_output=True,
                              text=True, check=False).stdout.split()
    assert leftover == [], f"still running after the demo: {leftover}"
