"""OAuth2 sign-in against the real Dovecot (oauth2 passdb) and Postfix (SASL via Dovecot).

Tokens come from a real local authorization server (tests/oauth_server.py) that Dovecot
asks, for every login, whether a token is active and whose it is.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from mailcanary.config import load_config
from mailcanary.diagnosis import BearerRejected, OAuthTokenError
from mailcanary.probes.runner import run_probe
from mailcanary.protocols.imap import ImapClient
from mailcanary.protocols.oauth2.tokens import TokenSource, access_token
from mailcanary.protocols.runtime import Runtime
from mailcanary.protocols.signin import imap_login
from mailcanary.result import ProbeContext, ProbeResult
from mailcanary.testbed import MailTestBed, ensure_installed
from tests.helpers.faults import closed_port
from tests.helpers.oauth_server import OAuthServer
from tests.helpers.support import check_json, cli, endpoint, write_config

SECRET = "cs-Canary-Client-Secret-41b7"
SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(scope="module")
def oauth_server() -> Iterator[OAuthServer]:
    with OAuthServer().running() as server:
        yield server


@pytest.fixture(scope="module")
def oauth_bed(
    tmp_path_factory: pytest.TempPathFactory, oauth_server: OAuthServer
) -> Iterator[MailTestBed]:
    ensure_installed()
    bed = MailTestBed(tmp_path_factory.mktemp("oauthbed"),
                      oauth2_introspection_url=oauth_server.url + "/introspect")
    bed.start()
    try:
        yield bed
    finally:
        bed.stop()


_RUNTIME: list[Runtime] = []  # the test's: its probes share tokens as a daemon's do


@pytest.fixture(autouse=True)
def _fresh_token_cache() -> Iterator[None]:
    forget_tokens()
    yield
    forget_tokens()


def forget_tokens() -> None:
    """A new runtime: no token source of an earlier probe is known any more."""
    _RUNTIME[:] = [Runtime()]


def secret_file(tmp: Path, name: str, value: str, mode: int = 0o600) -> Path:
    path = tmp / name
    path.write_text(value + "\n")
    path.chmod(mode)
    return path


def oauth_config(
    tmp: Path,
    bed: MailTestBed,
    token_url: str,
    client_id: str,
    *,
    refresh_token: str | None = None,
    mechanism: str = "xoauth2",
    timeout: str = "5s",
    username: str = "alice",
    protocols: tuple[str, ...] = ("imap", "smtp"),
    extra: dict[str, str] | None = None,
) -> Path:
    fields: dict[str, Any] = {"token_url": token_url, "client_id": client_id,
                              "mechanism": mechanism}
    if "client_secret_file" not in (extra or {}):
        fields["client_secret_file"] = str(secret_file(tmp, "client_secret", SECRET))
    if refresh_token is not None:
        fields["refresh_token_file"] = str(secret_file(tmp, "refresh_token", refresh_token))
    fields.update(extra or {})
    oauth2 = "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in fields.items()) + " }"
    lines = ["[[accounts]]", 'name = "acc"', 'address = "alice@example.test"',
             f'username = "{username}"', f'timeout = "{timeout}"',
             f'ca_file = "{bed.ca_pem}"', f"oauth2 = {oauth2}"]
    if "imap" in protocols:
        lines.append(f"imap = {endpoint(bed.host, bed.imap_port, 'starttls')}")
    if "smtp" in protocols:
        lines.append(f"smtp = {endpoint(bed.host, bed.submission_port, 'starttls')}")
    return write_config(tmp, "\n".join(lines) + "\n")


async def probe(kind: str, cfg: Path) -> ProbeResult:
    return await run_probe(kind, "acc", load_config(cfg), runtime=_RUNTIME[0])


def outcome(result: ProbeResult) -> tuple[str, str, str | None]:
    return result.cls, result.reason, result.phase


# ----------------------------------------------------------------------------- success


@pytest.mark.parametrize("mechanism", ["xoauth2", "oauthbearer"])
async def test_sign_in_shares_one_token(
    tmp_path: Path, oauth_bed: MailTestBed, oauth_server: OAuthServer, mechanism: str
) -> None:
    client = f"ok-{mechanism}"
    oauth_server.add_client(client, SECRET)
    cfg = oauth_config(tmp_path, oauth_bed, oauth_server.url + "/token", client,
                       refresh_token=oauth_server.grant(client, "alice"), mechanism=mechanism)
    code, rows, output = await check_json(cfg, "--transcript")
    assert code == 0, output
    # check prints results as they finish
    rows = sorted(rows, key=lambda r: ("imap", "smtp", "pop3").index(r["probe"]))
    assert [(r["probe"], r["ok"]) for r in rows] == [("imap", True), ("smtp", True)], output
    # One fetch for both probes, and only the fetching probe shows the token phase.
    assert len(oauth_server.token_requests(client)) == 1
    assert sum("token" in r["phases"] for r in rows) == 1
    transcript = "\n".join(line for r in rows for line in r["transcript"])
    assert f"AUTHENTICATE {mechanism.upper()} ***" in transcript
    assert f"AUTH {mechanism.upper()} ***" in transcript
    log = (oauth_bed.log_dir / "dovecot.log").read_text()
    assert f"method={mechanism.upper()}" in log


async def test_imap_without_sasl_ir_answers_the_continuation(
    tmp_path: Path, oauth_bed: MailTestBed, oauth_server: OAuthServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Dovecot offers SASL-IR; hide it, so the initial response goes after "+ "."""
    real: property = ImapClient.__dict__["capabilities"]
    assert real.fget is not None
    fget = real.fget
    monkeypatch.setattr(ImapClient, "capabilities", property(lambda s: fget(s) - {"SASL-IR"}))
    oauth_server.add_client("no-ir", SECRET)
    cfg = oauth_config(tmp_path, oauth_bed, oauth_server.url + "/token", "no-ir",
                       refresh_token=oauth_server.grant("no-ir", "alice"), protocols=("imap",))
    result = await probe("imap", cfg)
    assert result.ok, result.as_json(transcript=True)
    lines = [line.rstrip() for line in result.transcript]
    at = next(i for i, line in enumerate(lines) if line.endswith(" AUTHENTICATE XOAUTH2"))
    assert lines[at + 1].endswith("S: +") and lines[at + 2].endswith("C: ***"), lines


async def test_expiry_then_refresh(
    tmp_path: Path, oauth_bed: MailTestBed, oauth_server: OAuthServer
) -> None:
    oauth_server.add_client("short", SECRET, expires_in=1)
    cfg = oauth_config(tmp_path, oauth_bed, oauth_server.url + "/token", "short",
                       refresh_token=oauth_server.grant("short", "alice"))
    first = await probe("imap", cfg)
    second = await probe("smtp", cfg)  # within the lifetime: the cached token
    assert first.ok and second.ok, (first.as_json(), second.as_json())
    assert "token" in first.phases and "token" not in second.phases
    await asyncio.sleep(1.1)
    third = await probe("imap", cfg)
    assert third.ok and "token" in third.phases, third.as_json(transcript=True)
    assert len(oauth_server.token_requests("short")) == 2


async def test_refused_cached_token_is_refreshed_once(
    tmp_path: Path, oauth_bed: MailTestBed, oauth_server: OAuthServer
) -> None:
    oauth_server.add_client("revoked-at", SECRET)
    cfg = oauth_config(tmp_path, oauth_bed, oauth_server.url + "/token", "revoked-at",
                       refresh_token=oauth_server.grant("revoked-at", "alice"))
    assert (await probe("imap", cfg)).ok
    oauth_server.revoke_access_tokens()  # the cached token is now refused by Dovecot
    imap = await probe("imap", cfg)
    assert imap.ok, imap.as_json(transcript=True)
    assert "token" in imap.phases
    assert any("refused the cached access token" in line for line in imap.transcript)
    oauth_server.revoke_access_tokens()
    smtp = await probe("smtp", cfg)
    assert smtp.ok, smtp.as_json(transcript=True)
    assert len(oauth_server.token_requests("revoked-at")) == 3


async def test_rotated_refresh_token_is_written_back(
    tmp_path: Path, oauth_bed: MailTestBed, oauth_server: OAuthServer
) -> None:
    oauth_server.add_client("rotating", SECRET, rotate=True, expires_in=1)
    original = oauth_server.grant("rotating", "alice")
    cfg = oauth_config(tmp_path, oauth_bed, oauth_server.url + "/token", "rotating",
                       refresh_token=original)
    rt_file = tmp_path / "refresh_token"
    rt_file.chmod(0o640)
    assert (await probe("imap", cfg)).ok
    rotated = rt_file.read_text().strip()
    assert rotated != original and rotated in oauth_server.valid_refresh_tokens()
    assert original not in oauth_server.valid_refresh_tokens()
    assert stat.S_IMODE(rt_file.stat().st_mode) == 0o640
    assert [n for n in os.listdir(tmp_path) if n.startswith(".refresh_token")] == []
    await asyncio.sleep(1.1)
    again = await probe("smtp", cfg)  # refreshes with the rotated token
    assert again.ok and "token" in again.phases, again.as_json(transcript=True)
    assert rt_file.read_text().strip() not in (original, rotated)


async def test_client_credentials_grant(
    tmp_path: Path, oauth_bed: MailTestBed, oauth_server: OAuthServer
) -> None:
    oauth_server.add_client("app-only", SECRET, user="alice")
    cfg = oauth_config(tmp_path, oauth_bed, oauth_server.url + "/token", "app-only",
                       extra={"grant": "client_credentials", "scope": "mail/.default"})
    result = await probe("smtp", cfg)
    assert result.ok, result.as_json(transcript=True)
    [request] = oauth_server.token_requests("app-only")
    assert request["grant_type"] == "client_credentials"
    assert request["scope"] == "mail/.default"


# ----------------------------------------------------------------------------- failures


@pytest.mark.parametrize("mechanism", ["xoauth2", "oauthbearer"])
@pytest.mark.parametrize("kind", ["imap", "smtp"])
async def test_token_refused_by_the_mail_server(
    tmp_path: Path, oauth_bed: MailTestBed, oauth_server: OAuthServer, kind: str,
    mechanism: str,
) -> None:
    """The endpoint issues a token for bob; the account signs in as alice."""
    client = f"wrong-user-{kind}-{mechanism}"
    oauth_server.add_client(client, SECRET)
    cfg = oauth_config(tmp_path, oauth_bed, oauth_server.url + "/token", client,
                       refresh_token=oauth_server.grant(client, "bob"), mechanism=mechanism,
                       protocols=(kind,))
    result = await probe(kind, cfg)
    assert outcome(result) == ("auth", "invalid_credentials", "auth"), result.as_json(
        transcript=True)
    assert "server said: {" in result.detail  # the decoded JSON status
    assert ("invalid_token" if mechanism == "oauthbearer" else '"status":"401"') in result.detail
    assert "access token" in result.hint


@pytest.mark.parametrize(
    ("setup", "error", "hint_words"),
    [
        ("unknown_refresh_token", "invalid_grant",
         "mailcanary oauth2 authorize --account acc"),
        ("wrong_secret", "invalid_client", "client secret"),
        ("non_json", "bad_reply", "token_url"),
    ],
)
async def test_token_endpoint_errors(
    tmp_path: Path, oauth_bed: MailTestBed, oauth_server: OAuthServer, setup: str,
    error: str, hint_words: str,
) -> None:
    client = f"err-{setup}"
    oauth_server.add_client(client, "other-secret" if setup == "wrong_secret" else SECRET,
                            non_json=setup == "non_json")
    refresh = "rt-never-issued" if setup == "unknown_refresh_token" else oauth_server.grant(
        client, "alice")
    cfg = oauth_config(tmp_path, oauth_bed, oauth_server.url + "/token", client,
                       refresh_token=refresh)
    for kind in ("imap", "smtp"):
        result = await probe(kind, cfg)
        assert outcome(result) == ("auth", "oauth_token_error", "token"), result.as_json()
        assert hint_words in result.hint
        if error != "bad_reply":
            assert result.detail.startswith(f"{error}: "), result.detail
    code, rows, output = await check_json(cfg)
    assert code == 1
    assert {(r["class"], r["reason"], r["phase"]) for r in rows} == {
        ("auth", "oauth_token_error", "token")}, output


async def test_slow_token_endpoint_is_a_timeout_in_phase_token(
    tmp_path: Path, oauth_bed: MailTestBed, oauth_server: OAuthServer
) -> None:
    oauth_server.add_client("slow", SECRET, delay=3.0)
    cfg = oauth_config(tmp_path, oauth_bed, oauth_server.url + "/token", "slow",
                       refresh_token=oauth_server.grant("slow", "alice"), timeout="1s")
    results = await asyncio.gather(probe("imap", cfg), probe("smtp", cfg))
    for result in results:
        assert outcome(result) == ("timeout", "timeout", "token"), result.as_json()
        assert "token endpoint" in result.hint
        assert result.duration_seconds < 2.0


async def test_unreachable_token_endpoint(
    tmp_path: Path, oauth_bed: MailTestBed
) -> None:
    port = closed_port()
    cfg = oauth_config(tmp_path, oauth_bed, f"http://127.0.0.1:{port}/token", "nobody",
                       refresh_token="rt-x")
    result = await probe("imap", cfg)
    assert outcome(result) == ("auth", "oauth_token_error", "token"), result.as_json()
    assert f"127.0.0.1:{port}" in result.detail
    assert "cannot be reached" in result.hint


@pytest.mark.parametrize("which", ["client_secret_file", "refresh_token_file"])
async def test_unreadable_secret_file_is_a_config_error(
    tmp_path: Path, oauth_bed: MailTestBed, oauth_server: OAuthServer, which: str
) -> None:
    missing = tmp_path / f"missing-{which}"
    cfg = oauth_config(tmp_path, oauth_bed, oauth_server.url + "/token", "cfg-err",
                       refresh_token=None if which == "refresh_token_file" else "rt-x",
                       extra={which: str(missing)})
    result = await probe("imap", cfg)
    assert outcome(result) == ("config", "config_error", "token"), result.as_json()
    assert str(missing) in result.detail


async def test_mail_server_without_oauth_mechanisms(
    tmp_path: Path, testbed: MailTestBed, oauth_server: OAuthServer
) -> None:
    oauth_server.add_client("no-mech", SECRET)
    cfg = oauth_config(tmp_path, testbed, oauth_server.url + "/token", "no-mech",
                       refresh_token=oauth_server.grant("no-mech", "alice"))
    for kind in ("imap", "smtp"):
        result = await probe(kind, cfg)
        assert outcome(result) == ("auth", "mechanism_unsupported", "auth"), result.as_json()
        assert "XOAUTH2" in result.detail


# ----------------------------------------------------------------------------- secrets


async def test_no_secret_leaks_anywhere(
    tmp_path: Path, oauth_bed: MailTestBed, oauth_server: OAuthServer
) -> None:
    """Success, server refusal and endpoint refusal, with debug logs and transcripts."""
    oauth_server.add_client("leak", SECRET, rotate=True)
    good = oauth_server.grant("leak", "alice")
    outputs = []
    for name, refresh in (("good", good), ("bob", oauth_server.grant("leak", "bob")),
                          ("bad", "rt-Unknown-Refresh-Token-9c2e")):
        run_dir = tmp_path / name
        run_dir.mkdir()
        cfg = oauth_config(run_dir, oauth_bed, oauth_server.url + "/token", "leak",
                           refresh_token=refresh)
        code, out, err = await cli("--log-level", "debug", "check", "--config", str(cfg),
                                   "--json", "--transcript")
        assert code == (0 if name == "good" else 1), out + err
        outputs.append(out + err)
        for kind in ("imap", "smtp"):
            result = await probe(kind, cfg)
            outputs.append(json.dumps(result.as_json(transcript=True)))
        forget_tokens()
    assert json.loads(outputs[0].splitlines()[0])["ok"] is True, outputs[0]
    secrets = [SECRET, good, "rt-Unknown-Refresh-Token-9c2e",
               *oauth_server.valid_refresh_tokens(), *oauth_server.issued_access_tokens()]
    text = "\n".join(outputs)
    for secret in secrets:
        assert secret not in text
    assert "***" in text


# ----------------------------------------------------------------------------- authorize


async def start_authorize(cfg: Path, *args: str) -> asyncio.subprocess.Process:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC) + os.pathsep + env.get("PYTHONPATH", "")
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mailcanary", "oauth2", "authorize", "--config", str(cfg),
        "--account", "acc", "--wait", "20", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )


async def read_until(proc: asyncio.subprocess.Process, needle: str) -> str:
    assert proc.stdout is not None
    seen = ""
    async with asyncio.timeout(15):
        while needle not in seen:
            line = await proc.stdout.readline()
            assert line, f"authorize ended before printing {needle!r}: {seen}"
            seen += line.decode()
    return seen


async def finish(proc: asyncio.subprocess.Process) -> tuple[int, str]:
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode is not None
    return proc.returncode, out.decode() + err.decode()


async def test_authorize_browser_flow_with_loopback_redirect(
    tmp_path: Path, oauth_bed: MailTestBed, oauth_server: OAuthServer
) -> None:
    oauth_server.add_client("installed-app", SECRET)
    cfg = oauth_config(tmp_path, oauth_bed, oauth_server.url + "/token", "installed-app",
                       refresh_token="rt-placeholder",
                       extra={"authorization_url": oauth_server.url + "/authorize"})
    proc = await start_authorize(cfg, "--no-browser")
    printed = await read_until(proc, "Waiting for the browser")
    consent = next(line for line in printed.splitlines() if line.startswith("http"))
    query = parse_qs(urlsplit(consent).query)
    assert query["code_challenge_method"] == ["S256"] and query["redirect_uri"][0].startswith(
        "http://127.0.0.1:")
    async with httpx.AsyncClient() as browser:  # the person's browser, consenting
        back = await browser.get(consent)
        assert back.status_code == 302
        done = await browser.get(back.headers["location"])
        assert "signed in" in done.text
    code, output = await finish(proc)
    assert code == 0, output
    rt_file = tmp_path / "refresh_token"
    stored = rt_file.read_text().strip()
    assert stored in oauth_server.valid_refresh_tokens() and stored not in output
    assert stat.S_IMODE(rt_file.stat().st_mode) == 0o600
    result = await probe("imap", cfg)  # and the stored token works against Dovecot
    assert result.ok, result.as_json(transcript=True)


async def test_authorize_device_code_flow(
    tmp_path: Path, oauth_bed: MailTestBed, oauth_server: OAuthServer
) -> None:
    oauth_server.add_client("public-client", None)
    cfg = oauth_config(tmp_path, oauth_bed, oauth_server.url + "/token", "public-client",
                       refresh_token="rt-placeholder", mechanism="oauthbearer",
                       extra={"device_authorization_url": oauth_server.url + "/devicecode",
                              "scope": "imap smtp offline_access"})
    (tmp_path / "refresh_token").chmod(0o644)
    proc = await start_authorize(cfg)
    printed = await read_until(proc, "enter the code:")
    user_code = printed.rsplit("enter the code:", 1)[1].strip()
    await asyncio.sleep(1.2)  # let it poll at least once while the sign-in is pending
    oauth_server.approve_device(user_code, "alice")
    code, output = await finish(proc)
    assert code == 0, output
    polls = [r for r in oauth_server.token_requests("public-client")
             if r["grant_type"].endswith("device_code")]
    assert len(polls) >= 2
    rt_file = tmp_path / "refresh_token"
    assert rt_file.read_text().strip() in oauth_server.valid_refresh_tokens()
    assert stat.S_IMODE(rt_file.stat().st_mode) == 0o600
    result = await probe("smtp", cfg)
    assert result.ok, result.as_json(transcript=True)


async def test_authorize_refuses_what_it_cannot_do(
    tmp_path: Path, oauth_bed: MailTestBed, oauth_server: OAuthServer
) -> None:
    cfg = oauth_config(tmp_path, oauth_bed, oauth_server.url + "/token", "x",
                       refresh_token="rt-x")
    code, _, err = await cli("oauth2", "authorize", "--config", str(cfg), "--account", "acc")
    assert code == 1 and "authorization_url" in err and "Traceback" not in err
    code, _, err = await cli("oauth2", "authorize", "--config", str(cfg), "--account", "nope")
    assert code == 2 and "no account named 'nope'" in err


async def test_exception_text_holds_no_secret(
    tmp_path: Path, oauth_bed: MailTestBed, oauth_server: OAuthServer
) -> None:
    """The exceptions themselves, before the runner's redactor sees them."""
    oauth_server.add_client("exc", SECRET)
    bad_refresh = "rt-Bad-Refresh-For-Exception-5d1a"
    cfg = oauth_config(tmp_path, oauth_bed, oauth_server.url + "/token", "exc",
                       refresh_token=bad_refresh)
    account = load_config(cfg).account("acc")
    with pytest.raises(OAuthTokenError) as info:
        assert account.oauth2 is not None
        await access_token(ProbeContext("imap", "acc"), account,
                           TokenSource("acc", account.oauth2, account.ca_file), None)
    bob_cfg = oauth_config(tmp_path, oauth_bed, oauth_server.url + "/token", "exc",
                           refresh_token=oauth_server.grant("exc", "bob"))
    bob = load_config(bob_cfg).account("acc")
    assert bob.imap is not None
    client = ImapClient(ProbeContext("imap", "acc"), bob.imap, oauth_bed.ssl_context())
    try:
        await client.connect()
        with pytest.raises(BearerRejected) as rejected:
            await imap_login(client, bob)
    finally:
        client.close()
    texts = [str(info.value), repr(info.value), str(rejected.value), repr(rejected.value)]
    for secret in (SECRET, bad_refresh, *oauth_server.issued_access_tokens(),
                   *oauth_server.valid_refresh_tokens()):
        assert all(secret not in text for text in texts)
    assert "invalid_grant" in texts[0] and "AUTHENTICATIONFAILED" in texts[2]


# ------------------------------------------------- rotated tokens under systemd (issue 10)


def credentials_config(tmp: Path, bed: MailTestBed, server: OAuthServer, client: str) -> Path:
    """refresh_token_file = "rt", a name systemd resolves in $CREDENTIALS_DIRECTORY."""
    server.add_client(client, SECRET, rotate=True, expires_in=1)
    creds = tmp / "creds"
    creds.mkdir()
    secret_file(creds, "rt", server.grant(client, "alice"))
    return oauth_config(tmp, bed, server.url + "/token", client,
                        extra={"refresh_token_file": "rt"}, protocols=("imap",))


async def test_rotated_token_goes_back_to_the_credentials_directory(
    tmp_path: Path, oauth_bed: MailTestBed, oauth_server: OAuthServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cfg = credentials_config(tmp_path, oauth_bed, oauth_server, "rot-creds")
    original = (tmp_path / "creds" / "rt").read_text().strip()
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "creds"))
    monkeypatch.chdir(work)
    assert (await probe("imap", cfg)).ok
    rotated = (tmp_path / "creds" / "rt").read_text().strip()
    assert rotated != original and rotated in oauth_server.valid_refresh_tokens()
    assert not (work / "rt").exists()  # never the unresolved relative name


async def test_read_only_credentials_keep_rotated_token_in_state_dir(
    tmp_path: Path, oauth_bed: MailTestBed, oauth_server: OAuthServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As under systemd: $CREDENTIALS_DIRECTORY is read-only (a read-only bind mount in a
    mount namespace, which holds for root too); two `check` processes in a row."""
    cfg = credentials_config(tmp_path, oauth_bed, oauth_server, "rot-ro")
    creds = tmp_path / "creds"
    original = (creds / "rt").read_text().strip()
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    read_only = ("unshare", "-m", "sh", "-c",
                 f'mount --bind "{creds}" "{creds}" && '
                 f'mount -o remount,bind,ro "{creds}" && exec "$@"', "sh")
    for run in range(2):
        code, rows, output = await check_json(cfg, prefix=read_only)
        assert code == 0 and rows[0]["ok"], (run, output)
        await asyncio.sleep(1.1)  # the access token expires: the next run must refresh
    assert (creds / "rt").read_text().strip() == original  # untouched
    kept = json.loads((tmp_path / "state" / "oauth2" / "acc.json").read_text())
    assert kept["refresh_token"] in oauth_server.valid_refresh_tokens()
    assert original not in oauth_server.valid_refresh_tokens()
    assert stat.S_IMODE((tmp_path / "state" / "oauth2" / "acc.json").stat().st_mode) == 0o600
    assert kept["refresh_token"] not in output and original not in output
