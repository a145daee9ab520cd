"""``python -m mailcanary.testbed serve --dir DIR [--write-config FILE]``"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from mailcanary.testbed.bed import MailTestBed
from mailcanary.testbed.certs import FAULT_KINDS
from mailcanary.testbed.demo import install_junk_filter, write_demo_config
from mailcanary.testbed.errors import TestBedError
from mailcanary.testbed.install import ensure_installed


def _serve(args: argparse.Namespace) -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    ensure_installed()
    bed = MailTestBed(Path(args.dir), host=args.host)
    bed.start()
    try:
        faults = {kind: bed.tls_fault_ports(kind) for kind in FAULT_KINDS} if args.faults else {}
        out = [
            f"test bed running in {bed.root} (start {bed.timings['start']:.2f} s)",
            f"host              {bed.host}",
            f"imap_port         {bed.imap_port}  (STARTTLS)",
            f"imaps_port        {bed.imaps_port}  (implicit TLS)",
            f"submission_port   {bed.submission_port}  (STARTTLS, AUTH after STARTTLS)",
            f"submissions_port  {bed.submissions_port}  (implicit TLS, AUTH)",
            f"smtp_port         {bed.smtp_port}  (inbound MTA, no AUTH)",
            f"ca_pem            {bed.ca_pem}",
        ]
        out += [f"tls fault {k:<11} imaps {v[0]}  imap+starttls {v[1]}" for k, v in faults.items()]
        out += [f"user {u.name:<6} {u.address:<20} {u.password}" for u in bed.users]
        out += [f"log {p}" for p in bed.log_paths]
        if args.write_config:
            install_junk_filter(bed, "carol")  # the demo's canary filed into Junk
            config = write_demo_config(bed, Path(args.write_config), language=args.language)
            out.append(f"config            {config}")
        print("\n".join(out), flush=True)
        stop.wait()
    finally:
        bed.stop(wait_reaped=2.0)
    print(f"stopped (stop {bed.timings.get('stop', 0):.2f} s)", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mailcanary.testbed")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run a test bed until SIGTERM/SIGINT")
    serve.add_argument("--dir", required=True, help="directory for everything the bed writes")
    serve.add_argument("--write-config", metavar="FILE", help="write a demo mailcanary config")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--language", help="the demo config's [daemon] language (en, ja)")
    serve.add_argument("--faults", action="store_true", help="also start the TLS fault servers")
    args = parser.parse_args(argv)
    try:
        return _serve(args)
    except TestBedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
