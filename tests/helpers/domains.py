"""The domain checks' test world: a real NSD with good and broken domains, MX servers with
STARTTLS on 127.x.y.z:25, and an HTTPS server on :443 for MTA-STS policies.

Each test process takes its own /24 of 127/8 (from its pid), so xdist workers and other
runs on the machine never bind the same address:port. Ports 25 and 443 need root (the test
bed needs it anyway). The servers run in threads, so every test's event loop can use them.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import http.server
import os
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import trustme
from aiosmtpd.controller import Controller
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mailcanary.testbed.nsd import DnsServer, txt

ZONE = "dom.test"
GOOD_IP = "192.0.2.10"  # authorized by good.dom.test's SPF, on no list
LISTED_IP = "192.0.2.99"  # listed on bl.dom.test
LISTING_REASON = "Listed for sending spam, see https://bl.example/lookup?ip=192.0.2.99"


def base_prefix() -> str:
    pid = os.getpid()
    return f"127.{100 + pid % 100}.{(pid // 100) % 250 + 1}"


@dataclass
class World:
    nameserver: str
    ca_pem: Path
    prefix: str
    good_expiry: float  # notAfter of the good MX certificate (POSIX seconds)


def _rsa_key_b64() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def _spf_and_dmarc() -> list[str]:
    lines = [
        txt("good", f"v=spf1 ip4:{GOOD_IP} include:_spf.good.dom.test -all"),
        txt("_spf.good", "v=spf1 ip4:198.51.100.0/24 -all"),
        txt("_dmarc.good", "v=DMARC1; p=reject; rua=mailto:dmarc@good.dom.test"),
        txt("twospf", "v=spf1 -all"), txt("twospf", "v=spf1 ip4:192.0.2.10 -all"),
        txt("badspf", "v=spf1 ip4:192.0.2.300 -all"),
        txt("softfail", "v=spf1 ip4:198.51.100.1 ~all"),
        txt("hardfail", "v=spf1 ip4:198.51.100.1 -all"),
        txt("nospf", "some-verification=abc"),
        txt("many", "v=spf1 " + " ".join(f"include:l{i}.many.dom.test" for i in range(11))
            + " -all"),
        txt("_dmarc.baddmarc", "v=DMARC1; p=maybe"),
        txt("_dmarc.norp", "v=DMARC1; rua=mailto:x@norp.dom.test"),
    ]
    lines += [txt(f"l{i}.many", f"v=spf1 ip4:198.51.100.{i} -all") for i in range(11)]
    return lines


def _zone(p: str, dkim_key: str) -> list[str]:
    lines = [
        "good MX 10 mx1.good", "good MX 20 mx2.good",
        f"mx1.good A {p}.10", f"mx2.good A {p}.10",
        "sub.good MX 10 mx1.good",
        txt("s1._domainkey.good", f"v=DKIM1; k=rsa; p={dkim_key}"),
        txt("revoked._domainkey.good", "v=DKIM1; k=rsa; p="),
        txt("garbage._domainkey.good", "v=DKIM1; k=rsa; p=QUJDRA=="),
        txt("_mta-sts.good", "v=STSv1; id=20261207"), f"mta-sts.good A {p}.20",
        txt("_smtp._tls.good", "v=TLSRPTv1; rua=mailto:tlsrpt@good.dom.test"),
        txt("_smtp._tls.badrpt", "v=TLSRPTv1; ruf=mailto:x@badrpt.dom.test"),
        "expired MX 10 mx.expired", f"mx.expired A {p}.11",
        "nostarttls MX 10 mx.nostarttls", f"mx.nostarttls A {p}.12",
        "closed MX 10 mx.closed", f"mx.closed A {p}.14",
        "silent MX 10 mx.silent", f"mx.silent A {p}.15",
        "dangling MX 10 mx.dangling",
        "nullmx MX 0 .", f"implicit A {p}.10", "nomx TXT \"nothing here\"",
        "badsts MX 10 mx1.good", txt("_mta-sts.badsts", "v=STSv1; id=1"),
        f"mta-sts.badsts A {p}.20",
        "nopolicy MX 10 mx1.good", txt("_mta-sts.nopolicy", "v=STSv1; id=1"),
        f"mta-sts.nopolicy A {p}.20",
        "bigpolicy MX 10 mx1.good", txt("_mta-sts.bigpolicy", "v=STSv1; id=1"),
        f"mta-sts.bigpolicy A {p}.20",
        "gzbomb MX 10 mx1.good", txt("_mta-sts.gzbomb", "v=STSv1; id=1"),
        f"mta-sts.gzbomb A {p}.20",
        "redirect MX 10 mx1.good", txt("_mta-sts.redirect", "v=STSv1; id=1"),
        f"mta-sts.redirect A {p}.20",
        "99.2.0.192.bl A 127.0.0.2", txt("99.2.0.192.bl", LISTING_REASON),
        "2.0.0.127.bl A 127.0.0.2",
        "*.refusing A 127.255.255.254",
    ]
    return lines + _spf_and_dmarc()


POLICIES = {
    "mta-sts.good.dom.test": "version: STSv1\nmode: enforce\nmx: *.good.dom.test\n"
                             "max_age: 86400\n",
    "mta-sts.badsts.dom.test": "version: STSv1\nmode: enforce\nmx: mail.other.test\n"
                               "max_age: 86400\n",
    "mta-sts.bigpolicy.dom.test": "version: STSv1\nmode: testing\n" + "x" * (2 << 20),
    "mta-sts.gzbomb.dom.test": "",
}


class _PolicyHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        host = (self.headers.get("Host") or "").split(":")[0]
        if self.path != "/.well-known/mta-sts.txt" or host not in POLICIES | {
                "mta-sts.redirect.dom.test": ""}:
            self.send_error(404)
            return
        if host.startswith("mta-sts.redirect."):
            self.send_response(301)
            self.send_header("Location", "https://elsewhere.test/.well-known/mta-sts.txt")
            self.end_headers()
            return
        body = POLICIES[host].encode()
        self.send_response(200)
        if host.startswith("mta-sts.gzbomb."):  # 8 MiB of policy in ~8 KiB
            body = gzip.compress(b"version: STSv1\n" + b"#" * (8 << 20), compresslevel=9)
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Quiet:
    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        return "250 OK"


def _context(leaf: trustme.LeafCert) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(ctx)
    return ctx


@contextmanager
def domain_world(root: Path) -> Iterator[World]:
    p = base_prefix()
    ca = trustme.CA(organization_name="mailcanary domain test CA")
    ca_pem = root / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_pem))
    now = dt.datetime.now(dt.UTC)
    not_after = now + dt.timedelta(days=90)
    good = ca.issue_cert("mx1.good.dom.test", "mx2.good.dom.test", "implicit.dom.test",
                         not_after=not_after)
    expired = ca.issue_cert("mx.expired.dom.test", not_before=now - dt.timedelta(days=30),
                            not_after=now - dt.timedelta(days=1))
    web = ca.issue_cert(*(f"mta-sts.{d}.dom.test"
                          for d in ("good", "badsts", "nopolicy", "bigpolicy", "redirect",
                                    "gzbomb")))
    server = DnsServer(root / "nsd")
    server.add_zone(ZONE, _zone(p, _rsa_key_b64()))
    with ExitStack() as stack:
        stack.enter_context(server)
        for last, ctx in ((10, _context(good)), (11, _context(expired)), (12, None)):
            controller = Controller(_Quiet(), hostname=f"{p}.{last}", port=25,
                                    tls_context=ctx, require_starttls=False)
            controller.start()
            stack.callback(controller.stop)
        silent = socket.create_server((f"{p}.15", 25))  # connects, never greets
        stack.callback(silent.close)
        httpd = http.server.ThreadingHTTPServer((f"{p}.20", 443), _PolicyHandler)
        httpd.socket = _context(web).wrap_socket(httpd.socket, server_side=True)
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        stack.callback(httpd.server_close)
        stack.callback(httpd.shutdown)
        yield World(server.nameserver, ca_pem, p,
                    not_after.replace(microsecond=0).timestamp())
