"""A real authoritative DNS server (NSD, Debian's `nsd`) on a loopback port, for tests.

    server = DnsServer(tmp_path)
    server.add_zone("example.test", ['@ MX 10 mx1', 'mx1 A 127.0.0.1', txt("@", "v=spf1 -all")])
    with server:
        config["daemon"]["nameservers"] = [server.nameserver]

Zones get an SOA and NS record of their own; records are zone-file lines relative to the
zone's origin. `reload()` rewrites the zone files and restarts NSD on the same port (~0.15 s).
NSD runs in the foreground (-d) as the calling user, with every file under `root`; it needs
no privileges for a port above 1024. Every zone is checked with nsd-checkzone before the
start, so a broken test zone is an error naming its line, not a silent SERVFAIL.

Behaviour worth knowing (NSD 4.6 on Debian 12): it answers REFUSED for names outside its
zones (no recursion), and starts in ~0.1 s.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

import dns.message
import dns.query
import dns.rcode

from mailcanary.testbed.errors import TestBedError
from mailcanary.testbed.network import free_port
from mailcanary.testbed.processes import process_tree, terminate_tree

NSD = "/usr/sbin/nsd"
CHECKZONE = "/usr/sbin/nsd-checkzone"
READY_TIMEOUT = 10.0


def txt(owner: str, value: str) -> str:
    """A TXT line; a value over 255 bytes is split into several character-strings."""
    chunks = [value[i:i + 255] for i in range(0, len(value), 255)] or [""]
    quoted = " ".join('"' + c.replace("\\", "\\\\").replace('"', '\\"') + '"' for c in chunks)
    return f"{owner} TXT {quoted}"


def _free_udp_and_tcp(host: str) -> int:
    for _ in range(50):
        port = free_port(host)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            try:
                udp.bind((host, port))
            except OSError:
                continue
            return port
    raise TestBedError(f"no free UDP+TCP port on {host}")


class DnsServer:
    def __init__(self, root: Path, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.root = Path(root)
        self.host = host
        self.port = port or 0
        self.zones: dict[str, list[str]] = {}
        self.process: subprocess.Popen[bytes] | None = None
        self.serial = int(time.time())

    @property
    def nameserver(self) -> str:
        """For `[daemon] nameservers`: "HOST:PORT"."""
        return f"{self.host}:{self.port}"

    def add_zone(self, origin: str, records: Iterable[str]) -> None:
        self.zones[origin.lower().rstrip(".")] = list(records)

    def _zone_text(self, origin: str, records: list[str]) -> str:
        head = [f"$ORIGIN {origin}.", "$TTL 60",
                f"@ IN SOA ns.{origin}. hostmaster.{origin}. {self.serial} 3600 600 86400 60",
                f"@ IN NS ns.{origin}.", f"ns IN A {self.host}"]
        return "\n".join(head + records) + "\n"

    def _write(self) -> Path:
        if not shutil.which(NSD):
            raise TestBedError(f"{NSD} is missing: install the Debian package nsd")
        self.root.mkdir(parents=True, exist_ok=True)
        lines = ["server:", f"    ip-address: {self.host}@{self.port}", "    do-ip6: no",
                 '    username: ""', '    chroot: ""', f'    zonesdir: "{self.root}"',
                 '    database: ""', f'    zonelistfile: "{self.root}/zone.list"',
                 f'    xfrdfile: "{self.root}/xfrd.state"', f'    xfrdir: "{self.root}"',
                 f'    pidfile: "{self.root}/nsd.pid"', f'    logfile: "{self.root}/nsd.log"',
                 "    server-count: 1", "    verbosity: 1", "    hide-version: yes",
                 "remote-control:", "    control-enable: no"]
        for origin, records in self.zones.items():
            path = self.root / f"{origin}.zone"
            path.write_text(self._zone_text(origin, records))
            check = subprocess.run(  # noqa: S603  (fixed program, our own files)
                [CHECKZONE, origin, str(path)], capture_output=True, text=True, check=False)
            if check.returncode != 0:
                raise TestBedError(f"zone {origin} does not load: {check.stdout}{check.stderr}")
            lines += ["zone:", f'    name: "{origin}"', f'    zonefile: "{path.name}"']
        conf = self.root / "nsd.conf"
        conf.write_text("\n".join(lines) + "\n")
        return conf

    def start(self) -> None:
        if not self.port:
            self.port = _free_udp_and_tcp(self.host)
        conf = self._write()
        self.process = subprocess.Popen(  # noqa: S603  (fixed program, our own config)
            [NSD, "-d", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._wait_ready()

    def _wait_ready(self) -> None:
        assert self.process is not None
        probe = next(iter(self.zones), "invalid")
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise TestBedError(f"nsd exited ({self.process.returncode}): {err}")
            with contextlib.suppress(OSError, dns.exception.DNSException):
                reply = dns.query.udp(dns.message.make_query(probe, "SOA"), self.host,
                                      port=self.port, timeout=0.2)
                if reply.rcode() == dns.rcode.NOERROR:
                    return
            time.sleep(0.02)
        self.stop()
        raise TestBedError(f"nsd did not answer on {self.nameserver} within {READY_TIMEOUT} s")

    def reload(self) -> None:
        """New zone contents: stop and start again on the same port."""
        self.serial += 1
        self.stop()
        self.start()

    def stop(self) -> None:
        if self.process is None:
            return
        process, self.process = self.process, None
        terminate_tree(process_tree(process.pid) | {process.pid})
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
        if process.stderr is not None:
            process.stderr.close()

    def __enter__(self) -> DnsServer:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
