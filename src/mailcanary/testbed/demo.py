"""A mailcanary config (per CONTRACT.md) pointing at a running test bed."""

from __future__ import annotations

import json
from pathlib import Path

from mailcanary.testbed.bed import MailTestBed

DEMO_LISTEN = "127.0.0.1:9782"


def _q(value: str | Path) -> str:
    # A JSON string is a valid TOML basic string (same escapes, \\uXXXX included).
    return json.dumps(str(value), ensure_ascii=False)


def _wrong_password(password: str) -> str:
    return password[::-1] + "-wrong"


def write_demo_config(
    bed: MailTestBed,
    path: Path,
    *,
    broken_user: str | None = "bob",
    listen: str = DEMO_LISTEN,
) -> Path:
    """Write a mailcanary TOML config for accounts alice and bob and route alice-to-bob.

    Passwords go to 0600 files ``<bed root>/demo/secrets/<name>``; the daemon's state_dir
    is ``<bed root>/demo/state``.
    ``broken_user``'s file holds a wrong password, so a demo shows the diagnosis.
    """
    path = Path(path).absolute()
    secrets = bed.root / "demo" / "secrets"
    secrets.mkdir(parents=True, exist_ok=True)
    secrets.chmod(0o700)
    state_dir = bed.root / "demo" / "state"
    lines = [
        "# mailcanary demo config for the test bed in " + str(bed.root),
        "[daemon]",
        f"listen = {_q(listen)}",
        f"state_dir = {_q(state_dir)}",
        "",
        "[defaults]",
        'interval = "30s"',
        'timeout = "10s"',
        "",
    ]
    for name in ("alice", "bob"):
        user = bed.user(name)
        password = _wrong_password(user.password) if name == broken_user else user.password
        secret = secrets / name
        secret.touch(mode=0o600)
        secret.chmod(0o600)
        secret.write_text(password + "\n")
        lines += [
            "[[accounts]]",
            f"name = {_q(name)}",
            f"address = {_q(user.address)}",
            f"username = {_q(user.name)}",
            f"password_file = {_q(secret)}",
            f"ca_file = {_q(bed.ca_pem)}",
            f'imap = {{ host = {_q(bed.host)}, port = {bed.imaps_port}, security = "tls" }}',
            f"smtp = {{ host = {_q(bed.host)}, port = {bed.submission_port}, "
            'security = "starttls" }',
            "",
        ]
    lines += [
        "[[routes]]",
        'name = "alice-to-bob"',
        'from = "alice"',
        'to = "bob"',
        'deadline = "60s"',
        'slo = "10s"',
        "",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    return path
