"""How close is the delivery time mailcanary reports to the true one? (run by hand, as root)

    python bench/roundtrip_bench.py [--count 100] [--peer-count 10]

Starts a test bed (Dovecot + Postfix), sends `--count` canaries alice -> bob through the
submission port (STARTTLS + AUTH) and watches bob over IMAPS. The true delivery time of
each canary is read from the receiver's Maildir: the file's mtime (when Dovecot's LMTP
finished writing it, just before the rename into new/) and the microsecond time Dovecot
puts in the file's name (``<secs>.M<usecs>P<pid>...``, taken when it created the file).
Both are wall clock; the SMTP accept is converted to the wall clock with time.time() read
right at the accept. Then Debian's check_email_delivery runs `--peer-count` times on the
same route, as the reference peer.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mailcanary.config import Config, load_config  # after the path tweak
from mailcanary.logsetup import configure_logging
from mailcanary.probes import PROBES
from mailcanary.probes.roundtrip.probe import round_trip
from mailcanary.probes.runner import run_probe
from mailcanary.result import ProbeContext
from mailcanary.testbed import MailTestBed, ensure_installed

PEER = "/usr/lib/nagios/plugins/check_email_delivery"
_NAME_TIME = re.compile(r"^(\d+)\.M(\d+)P")


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {model}, " \
           f"{platform.system()} {platform.release()}"


def write_config(bed: MailTestBed, root: Path) -> Path:
    lines = ["[daemon]", f'state_dir = "{root / "state"}"', ""]
    for name in ("alice", "bob"):
        secret = root / f"pw-{name}"
        secret.write_text(bed.user(name).password + "\n")
        secret.chmod(0o600)
        lines += [
            "[[accounts]]", f'name = "{name}"', f'address = "{bed.user(name).address}"',
            f'username = "{name}"', f'password_file = "{secret}"', f'ca_file = "{bed.ca_pem}"',
            'timeout = "10s"',
            f'imap = {{ host = "{bed.host}", port = {bed.imaps_port}, security = "tls" }}',
            f'smtp = {{ host = "{bed.host}", port = {bed.submission_port}, '
            'security = "starttls" }', "",
        ]
    lines += ["[[routes]]", 'name = "alice-to-bob"', 'from = "alice"', 'to = "bob"',
              'deadline = "30s"', 'slo = "10s"', ""]
    path = root / "mailcanary.toml"
    path.write_text("\n".join(lines))
    return path


def find_file(maildir: Path, token: str) -> Path | None:
    needle = token.encode()
    for sub in ("new", "cur"):
        for entry in os.scandir(maildir / sub):
            with open(entry.path, "rb") as fh:  # a tiny local file
                if needle in fh.read(4096):
                    return Path(entry.path)
    return None


async def one(config: Config, bed: MailTestBed) -> dict[str, Any]:
    truth: dict[str, float] = {}

    async def seen(token: str, accepted_wall: float) -> None:
        path = find_file(bed.maildir("bob"), token)
        assert path is not None, "canary not in bob's Maildir"
        st = path.stat()
        truth["mtime"] = st.st_mtime_ns / 1e9 - accepted_wall
        m = _NAME_TIME.match(path.name)
        if m:
            truth["name"] = int(m.group(1)) + int(m.group(2)) / 1e6 - accepted_wall

    async def run(ctx: ProbeContext, cfg: Config, target: str) -> None:
        await round_trip(ctx, cfg, target, after_seen=seen)

    kind = PROBES["roundtrip"]
    registry = {"roundtrip": replace(kind, run=run)}
    result = await run_probe("roundtrip", "alice-to-bob", config, registry=registry)
    if not result.ok:
        raise SystemExit(f"round trip failed: {result.as_json()}")
    return {"reported": result.extra["delivery_seconds"],
            "commands": result.extra["imap_commands"], **truth}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def peer_runs(bed: MailTestBed, count: int) -> list[dict[str, float]]:
    """check_email_delivery on the same route. Its Perl TLS stack does not take our CA
    from the command line, so it submits on port 25 and reads IMAP in clear text (both on
    loopback): that only makes it faster than over TLS."""
    if not Path(PEER).exists():
        return []
    alice, bob = bed.user("alice"), bed.user("bob")
    out = []
    for _ in range(count):
        cmd = [PEER, "--hires", "--smtp-server", bed.host, "--smtp-port", str(bed.smtp_port),
               "--nosmtptls", "--imap-server", bed.host, "--imap-port", str(bed.imap_port),
               "--noimapssl", "--username", "bob", "--password", bob.password,
               "--mailto", bob.address, "--mailfrom", alice.address, "--wait", "1",
               "--imap-check-interval", "1", "--timeout", "30"]
        start = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wall = time.monotonic() - start
        m = re.search(r"delay=([\d.]+)s.*elapsed=([\d.]+)s", proc.stdout)
        if proc.returncode != 0 or m is None:
            print(f"peer failed: {proc.stdout.strip()} {proc.stderr.strip()[-200:]}")
            continue
        out.append({"delay": float(m.group(1)), "elapsed": float(m.group(2)), "wall": wall})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--peer-count", type=int, default=10)
    args = parser.parse_args()
    configure_logging("error")
    ensure_installed()
    with tempfile.TemporaryDirectory(prefix="mailcanary-bench-") as tmp:
        root = Path(tmp)
        bed = MailTestBed(root / "bed")
        bed.start()
        try:
            config = load_config(write_config(bed, root))
            asyncio.run(one(config, bed))  # warm-up: first login, first delivery
            rows = [asyncio.run(one(config, bed)) for _ in range(args.count)]
            peer = peer_runs(bed, args.peer_count)
        finally:
            bed.stop()
    print(f"machine: {machine()}")
    print(f"canaries: {len(rows)} (alice -> bob, submission STARTTLS+AUTH -> IMAPS)")
    for key, label in (("name", "Maildir file name time (us)"), ("mtime", "Maildir file mtime")):
        errors = [r["reported"] - r[key] for r in rows if key in r]
        if not errors:
            continue
        abs_err = [abs(e) for e in errors]
        true_median = statistics.median(r[key] for r in rows if key in r)
        print(f"  truth = {label}: true delivery median {true_median*1000:.1f} ms; "
              f"|error| median {statistics.median(abs_err)*1000:.1f} ms, "
              f"p95 {percentile(abs_err, 95)*1000:.1f} ms, max {max(abs_err)*1000:.1f} ms; "
              f"signed median {statistics.median(errors)*1000:+.1f} ms")
    reported = [r["reported"] for r in rows]
    print(f"  reported delivery: median {statistics.median(reported)*1000:.1f} ms, "
          f"p95 {percentile(reported, 95)*1000:.1f} ms")
    commands = [r["commands"] for r in rows]
    print(f"  IMAP commands per canary: median {statistics.median(commands):g}, "
          f"min {min(commands)}, max {max(commands)}")
    if peer:
        delays = [p["delay"] for p in peer]
        print(f"check_email_delivery ({len(peer)} runs): reported delay median "
              f"{statistics.median(delays):.3f} s (min {min(delays):.3f}, max {max(delays):.3f}); "
              f"elapsed median {statistics.median(p['elapsed'] for p in peer):.3f} s")
    else:
        print("check_email_delivery: not run (not installed, or every run failed)")


if __name__ == "__main__":
    main()
