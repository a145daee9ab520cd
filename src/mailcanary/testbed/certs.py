"""Certificates of the test bed, made with trustme."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import trustme

VALID_IDENTITIES = ("localhost", "127.0.0.1", "mail.example.test")
WRONG_HOST = "wrong.example.invalid"
FAULT_KINDS = ("expired", "wrong_host", "self_signed")


@dataclass(frozen=True)
class CertFiles:
    cert: Path  # leaf + chain, PEM
    key: Path  # private key, PEM


def _write(leaf: trustme.LeafCert, directory: Path, stem: str) -> CertFiles:
    cert = directory / f"{stem}-cert.pem"
    key = directory / f"{stem}-key.pem"
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    key.touch(mode=0o600)
    key.write_bytes(leaf.private_key_pem.bytes())
    return CertFiles(cert=cert, key=key)


def make_certs(
    directory: Path, *hosts: str
) -> tuple[trustme.CA, Path, CertFiles, dict[str, CertFiles]]:
    """Create the test CA, its PEM file, the valid server cert and one cert per TLS fault.
    The valid certificate also names `hosts` (the bed's addresses, e.g. 127.0.0.3)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="mailcanary test bed CA")
    ca_pem = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_pem))
    identities = VALID_IDENTITIES + tuple(h for h in dict.fromkeys(hosts)
                                          if h not in VALID_IDENTITIES)
    valid = _write(ca.issue_cert(*identities), directory, "valid")

    now = dt.datetime.now(dt.UTC)
    faults = {
        "expired": _write(
            ca.issue_cert(
                *VALID_IDENTITIES,
                not_before=now - dt.timedelta(days=30),
                not_after=now - dt.timedelta(days=1),
            ),
            directory,
            "expired",
        ),
        "wrong_host": _write(ca.issue_cert(WRONG_HOST), directory, "wrong-host"),
        # Issued by a CA that is not in ca_pem: "unable to get local issuer certificate".
        "self_signed": _write(
            trustme.CA(organization_name="untrusted CA").issue_cert(*VALID_IDENTITIES),
            directory,
            "self-signed",
        ),
    }
    return ca, ca_pem, valid, faults
