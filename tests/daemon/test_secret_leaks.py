"""No secret, in any encoded form, reaches any output; a secret with a control character is
a config error naming its source, never its value (the contract's v3 hostile-input bullets).

The hostile server echoes what it was sent: the SASL PLAIN blob, the password
percent-encoded, escaped as Python writes it, and base64 at every alignment. Every output is
then grepped for every form: `check --json` stdout, the daemon's log, every file in
`state_dir`, every webhook payload.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote

import pytest

from mailcanary.credentials import CredentialError, read_secret_env, read_secret_file
from mailcanary.result import Redactor
from tests.helpers.daemon_support import daemon_config, free_port, running_daemon
from tests.helpers.receivers import receiver
from tests.helpers.support import PASSWORD, account, cli, endpoint, password_file

USER = "leak@example.test"


def forms(secret: str) -> dict[str, str]:
    """Each encoded form a leak could take, by name."""
    plain = base64.b64encode(f"\0{USER}\0{secret}".encode()).decode()
    xoauth = base64.b64encode(f"user={USER}\x01auth=Bearer {secret}\x01\x01".encode()).decode()
    return {
        "plain": secret,
        "base64": base64.b64encode(secret.encode()).decode(),
        "base64-at-1": base64.b64encode(b"x" + secret.encode()).decode()[4:-4],
        "sasl-plain": plain,
        "xoauth2": xoauth,
        "percent": quote(secret, safe=""),
        "repr": repr(secret)[1:-1],
        "bytes-repr": repr(secret.encode())[2:-1],
    }


def leaks(text: str, secret: str) -> list[str]:
    found = [name for name, form in forms(secret).items() if form in text]
    # the core of the base64 forms (not just the whole blob)
    for shift in range(3):
        core = base64.b64encode(b"\0" * shift + secret.encode()).decode()[4:-4]
        if len(core) >= 8 and core in text:
            found.append(f"base64-core-{shift}")
    return found


SECRET = PASSWORD + "/+ é%"  # a slash, a plus, a space, a non-ASCII letter and a percent


@asynccontextmanager
async def echoing_imap() -> AsyncIterator[int]:
    """An IMAP server that refuses every login, quoting back what it got, encoded."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"* OK echo ready\r\n")
        while line := await reader.readline():
            tag, _, rest = line.decode().rstrip("\r\n").partition(" ")
            if rest.upper().startswith("CAPABILITY"):
                writer.write(f"* CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR\r\n{tag} OK\r\n".encode())
            elif rest.upper().startswith(("AUTHENTICATE", "LOGIN")):
                echo = " ".join(f"{k}={v}" for k, v in forms(SECRET).items() if k != "xoauth2")
                sent = rest.split(" ")[-1]
                writer.write(f"{tag} NO [AUTHENTICATIONFAILED] got {sent} {echo}\r\n".encode())
            else:
                writer.write(f"{tag} BAD what\r\n".encode())
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


def test_redactor_masks_every_encoded_form() -> None:
    redact = Redactor()
    redact.add(SECRET)
    for name, form in forms(SECRET).items():
        assert not leaks(redact(f"before {form} after"), SECRET), name


async def test_no_encoded_secret_in_any_output(tmp_path: Path) -> None:
    pw = password_file(tmp_path, SECRET)
    port = free_port()
    async with echoing_imap() as imap_port, receiver() as hook:
        acc = account("leaky", imap=endpoint("127.0.0.1", imap_port), password_file=pw,
                      username=USER)
        sink = f'[[alerts]]\nkind = "webhook"\nurl = "{hook.url}/hook"\nafter = 1\n'
        config = daemon_config(tmp_path, port, acc, sink, interval="1s")
        code, out, err = await cli("check", "--config", str(config), "--json", "--transcript")
        assert code == 1, err
        assert "AUTHENTICATIONFAILED" in out
        assert not leaks(out + err, SECRET), (leaks(out + err, SECRET), out)
        async with running_daemon(config, port) as daemon:
            async def alerted() -> bool:
                return len(hook.bodies("/hook")) >= 1

            await daemon.wait_for(alerted, 20, "an alert")
            await asyncio.sleep(2.5)  # batched state writes land
            text = daemon.log_path.read_text()
        assert "AUTHENTICATIONFAILED" in text
        assert not leaks(text, SECRET), leaks(text, SECRET)
        payloads = json.dumps(hook.bodies("/hook"), ensure_ascii=False)
        assert "AUTHENTICATIONFAILED" in payloads
        assert not leaks(payloads, SECRET) and not leaks(json.dumps(hook.bodies("/hook")), SECRET)
        states = list((tmp_path / "state").rglob("*"))
        assert any(p.name == "alerts.json" for p in states)
        for path in states:
            if path.is_file():
                blob = path.read_bytes().decode("utf-8", "replace")
                assert not leaks(blob, SECRET), (path, leaks(blob, SECRET))


@pytest.mark.parametrize("content", ["zq9\n\n", "zq9\r\n\n", "zq\x1b9", "zq9\x00", "z\nq9\n"])
def test_control_character_in_a_secret_file_is_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "secret"
    path.write_text(content)
    with pytest.raises(CredentialError) as err:
        read_secret_file(path, "trigger.bearer_token_file")
    assert str(path) in str(err.value) and "control character" in str(err.value)
    assert "zq" not in str(err.value).replace(str(path), "")


def test_one_trailing_newline_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("tok-value\n")
    assert read_secret_file(path, "password_file").reveal() == "tok-value"


def test_control_character_in_an_environment_secret_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEAKY_TOKEN", "abc\n\n")
    with pytest.raises(CredentialError, match=r"LEAKY_TOKEN.*control character") as err:
        read_secret_env("LEAKY_TOKEN", "trigger.bearer_token_env")
    assert "abc" not in str(err.value)


def test_credentials_directory_secret_with_control_character(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "imap-pw").write_text("pw\x07\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    with pytest.raises(CredentialError, match="imap-pw"):
        read_secret_file(Path("imap-pw"), "password_file")
    assert os.environ["CREDENTIALS_DIRECTORY"] == str(tmp_path)
