"""A mailcanary config (per CONTRACT.md) pointing at a running test bed: the demo.

The demo shows the whole product within its first minute: a canary delivered (alice to
bob, with its time), a canary filed into Junk (alice to carol, whose mailbox files
everything into Junk: `install_junk_filter`), a wrong password with its hint (dave's
password file is wrong) and a wrong port with the settings doctor's suggestion
("alice-typo": implicit TLS on the STARTTLS port).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from mailcanary.testbed.bed import MailTestBed
from mailcanary.testbed.templates import MAIL_GID, MAIL_UID

DEMO_LISTEN = "127.0.0.1:9782"
JUNK_SIEVE = ('require ["fileinto", "mailbox"];\n'
              '# the demo: a strict spam filter\nfileinto :create "Junk";\n')


def _q(value: str | Path) -> str:
    # A JSON string is a valid TOML basic string (same escapes, \\uXXXX included).
    return json.dumps(str(value), ensure_ascii=False)


def _wrong_password(password: str) -> str:
    return password[::-1] + "-wrong"


def install_junk_filter(bed: MailTestBed, user: str) -> None:
    """`user`'s own Sieve script files every message into Junk, as an overzealous spam
    filter would (the demo's bed only: the test suite's carol keeps her inbox)."""
    home = bed.mail_root / user
    script = home / ".dovecot.sieve"
    script.write_text(JUNK_SIEVE)
    if os.geteuid() == 0:
        os.chown(script, MAIL_UID, MAIL_GID)


def _account(bed: MailTestBed, name: str, user: str, secret: Path, *,
             imap_port: int | None = None, imap_security: str = "tls",
             smtp: bool = True) -> list[str]:
    lines = [
        "[[accounts]]",
        f"name = {_q(name)}",
        f"address = {_q(bed.user(user).address)}",
        f"username = {_q(user)}",
        f"password_file = {_q(secret)}",
        f"ca_file = {_q(bed.ca_pem)}",
        f"imap = {{ host = {_q(bed.host)}, port = {imap_port or bed.imaps_port}, "
        f"security = {_q(imap_security)} }}",
    ]
    if smtp:
        lines.append(f"smtp = {{ host = {_q(bed.host)}, port = {bed.submission_port}, "
                     'security = "starttls" }')
    return [*lines, ""]


def write_demo_config(
    bed: MailTestBed,
    path: Path,
    *,
    broken_user: str | None = "dave",
    listen: str = DEMO_LISTEN,
    language: str | None = None,
) -> Path:
    """Write the demo's mailcanary TOML config: accounts alice, bob, carol, dave and
    alice-typo; routes alice-to-bob and alice-to-carol.

    Passwords go to 0600 files ``<bed root>/demo/secrets/<name>``; the daemon's state_dir
    is ``<bed root>/demo/state``. ``broken_user``'s file holds a wrong password, so the
    demo shows that diagnosis; alice-typo uses implicit TLS on the STARTTLS port, so it
    shows the settings doctor's suggestion.
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
        *([f"language = {_q(language)}"] if language else []),
        "",
        "[defaults]",
        'interval = "20s"',  # short for a demo: every first run within 20 s
        'timeout = "10s"',
        "",
    ]
    users = [u.name for u in bed.users if u.name in ("alice", "bob", "carol", "dave")]
    for name in users:
        user = bed.user(name)
        password = _wrong_password(user.password) if name == broken_user else user.password
        secret = secrets / name
        secret.touch(mode=0o600)
        secret.chmod(0o600)
        secret.write_text(password + "\n")
        lines += _account(bed, name, name, secret)
    if "alice" in users:
        lines += _account(bed, "alice-typo", "alice", secrets / "alice",
                          imap_port=bed.imap_port, smtp=False)
    for to in ("bob", "carol"):
        if to in users:
            lines += ["[[routes]]", f'name = "alice-to-{to}"', 'from = "alice"', f'to = "{to}"',
                      'interval = "30s"', 'deadline = "25s"', 'slo = "10s"', ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    return path
