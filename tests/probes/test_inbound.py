"""Inbound watches on the real test bed, through `check --json`: a real web app sends its
mail through Postfix, real Dovecot holds the mailbox. Every outcome, stale mail, cleanup
that touches nothing else, the {token} round trip, Japanese and HTML-only mail, the
interval guard and the bearer token's absence from every output."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from mailcanary.config import load_config
from mailcanary.probes.runner import run_probe
from mailcanary.testbed import MailTestBed
from tests.helpers.mailapp import MailApp, mail_app
from tests.helpers.support import account, check_json, cli, endpoint, password_file, write_config

pytestmark = pytest.mark.testbed

USER = "dave"
BEARER = "Bearer-Secret-9d2f7c41"
TOKEN_MATCH = '{ subject = "verify", body = "code:\\\\s*123456[\\\\s\\\\S]*token\\\\s+{token}" }'


def inventory(bed: MailTestBed) -> list[tuple[str, str]]:
    """(folder, Message-less identity) of every message in every folder of the user."""
    out = bed.doveadm("fetch", "-u", USER, "mailbox guid", "mailbox", "*", "ALL").stdout
    rows = [line.split(": ", 1)[1] for line in out.splitlines() if ": " in line]
    return sorted(zip(rows[::2], rows[1::2], strict=True))


@pytest.fixture
def clean(testbed: MailTestBed) -> MailTestBed:
    testbed.doveadm("expunge", "-u", USER, "mailbox", "*", "ALL")
    return testbed


def watch_config(
    bed: MailTestBed, tmp: Path, *, url: str | None, match: str = TOKEN_MATCH,
    deadline: str = "5s", slo: str = "3s", extra: str = "", interval: str = "1s",
) -> Path:
    pw = password_file(tmp, bed.user(USER).password, name="pw-dave")
    acc = account(USER, password_file=pw, ca_file=bed.ca_pem, timeout="3s",
                  imap=endpoint(bed.host, bed.imaps_port, "tls"))
    trigger = ""
    if url is not None:
        trigger = (f'trigger = {{ url = "{url}", body = \'{{"email": "{{address}}", '
                   f'"token": "{{token}}"}}\', headers = {{ "Content-Type" = '
                   f'"application/json" }}{extra} }}\n')
    watch = (f'\n[[inbound]]\nname = "signup"\naccount = "{USER}"\ninterval = "{interval}"\n'
             f'deadline = "{deadline}"\nslo = "{slo}"\nmatch = {match}\n{trigger}')
    return write_config(tmp, acc, extra=watch)


async def check(config: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    code, rows, out = await check_json(config, "--inbound", "signup", *args)
    assert len(rows) == 1, out
    return code, rows[0], out


def deliver(bed: MailTestBed, app: MailApp, mode: str, token: str, folder: str = "INBOX") -> None:
    """Put an app mail in place before the trigger, and wait until Dovecot has it."""
    app.send(mode, bed.user(USER).address, token)
    deadline = time.monotonic() + 10
    while not bed.doveadm("search", "-u", USER, "mailbox", folder, "BODY", token).stdout:
        assert time.monotonic() < deadline, "the stale message never arrived"
        time.sleep(0.02)


async def test_inbox_ok_stale_mail_never_counts_and_cleanup_is_exact(
    clean: MailTestBed, tmp_path: Path
) -> None:
    async with mail_app(clean) as app:
        # Matching mail that was there before the trigger: same subject, code and sender.
        deliver(clean, app, "normal", "stale0token")
        stale_match = '{ from = "no-reply@app\\\\.example", subject = "verify", body = "123456" }'
        config = watch_config(clean, tmp_path, url=app.url("normal"), match=stale_match)
        clean.create_folder(USER, "Receipts")
        deliver(clean, app, "normal", "other1token")
        clean.doveadm("move", "-u", USER, "Receipts", "mailbox", "INBOX", "BODY", "other1token")
        before = inventory(clean)
        code, row, out = await check(config)
    assert code == 0, out
    assert row["ok"] and row["placement"] == "inbox", row
    assert 0 <= row["delivery_seconds"] < 2.0
    assert row["auth_results"] == {"spf": "none", "dkim": "none", "dmarc": "none"}
    assert "trigger" in row["phases"] and "deliver" in row["phases"]
    assert inventory(clean) == before  # the stale one and the other folder's message stay
    assert clean.doveadm("search", "-u", USER, "mailbox", "INBOX", "BODY", "stale0token").stdout


async def test_token_round_trip_from_trigger_to_match(clean: MailTestBed, tmp_path: Path) -> None:
    async with mail_app(clean) as app:
        deliver(clean, app, "normal", "notthistoken")  # matches all but the token
        config = watch_config(clean, tmp_path, url=app.url("normal") + "?to={address}",
                              match=TOKEN_MATCH, slo="10s")
        config.write_text(config.read_text().replace(
            '"Content-Type" = "application/json"',
            '"Content-Type" = "application/json", "X-Run" = "{token} for {address}"'))
        code, row, out = await check(config, "--transcript")
        sent = app.requests[0]
    assert code == 0, out
    assert sent["body"] == {"email": clean.user(USER).address, "token": row["token"]}
    assert sent["headers"]["x-run"] == f"{row['token']} for {clean.user(USER).address}"
    assert len(row["token"]) >= 16 and row["token"].isalnum()
    assert any("/normal?to=dave@example.test" in line for line in row["transcript"])
    assert clean.doveadm("search", "-u", USER, "mailbox", "INBOX", "BODY", row["token"]).stdout \
        == ""


async def test_spam_folder_names_what_the_receiver_said(
    clean: MailTestBed, tmp_path: Path
) -> None:
    stale_match = '{ from = "no-reply@app\\\\.example", subject = "verify", body = "123456" }'
    async with mail_app(clean) as app:
        deliver(clean, app, "spam", "stalejunk1", folder="Junk")  # matches, but is old
        before = inventory(clean)
        config = watch_config(clean, tmp_path, url=app.url("spam"), match=stale_match)
        code, row, out = await check(config)
    assert code == 1, out
    assert (row["class"], row["reason"], row["phase"]) == ("spam", "spam_folder", "deliver")
    assert row["placement"] == "spam" and row["folder"] == "Junk"
    assert "dkim=fail" in row["detail"] and "SpamAssassin" in row["detail"]
    assert "BAYES_99" in row["detail"]
    assert "DKIM fail for app.example" in row["hint"] and "s1._domainkey.app.example" in row["hint"]
    assert row["auth_results"]["dkim"] == "fail"
    assert row["token"] not in str(before)
    assert inventory(clean) == before  # ours deleted from Junk, the old one kept
    assert clean.doveadm("search", "-u", USER, "mailbox", "Junk", "BODY", "stalejunk1").stdout


async def test_never_sent_is_lost(clean: MailTestBed, tmp_path: Path) -> None:
    async with mail_app(clean) as app:
        config = watch_config(clean, tmp_path, url=app.url("never"), deadline="1500ms")
        code, row, out = await check(config)
    assert code == 1, out
    assert (row["class"], row["reason"], row["phase"]) == ("delivery", "lost", "deliver")
    assert row["placement"] == "missing" and row["delivery_seconds"] is None
    assert row["phases"]["deliver"] >= 1.4


async def test_in_another_folder_after_the_deadline(clean: MailTestBed, tmp_path: Path) -> None:
    async with mail_app(clean) as app:
        config = watch_config(clean, tmp_path, url=app.url("other"), deadline="1s")
        code, row, out = await check(config)
    assert code == 1, out
    assert (row["reason"], row["placement"], row["folder"]) == ("lost", "other", "Archive"), row
    assert inventory(clean) == []


async def test_old_mail_in_another_folder_is_not_other(
    clean: MailTestBed, tmp_path: Path
) -> None:
    stale_match = '{ from = "no-reply@app\\\\.example", subject = "verify" }'
    async with mail_app(clean) as app:
        app.send("other", clean.user(USER).address, "oldarchived")  # arrived before the trigger
        await asyncio.sleep(2.1)  # INTERNALDATE has whole seconds
        before = inventory(clean)
        config = watch_config(clean, tmp_path, url=app.url("never"), match=stale_match,
                              deadline="500ms")
        code, row, out = await check(config)
    assert code == 1 and (row["reason"], row["placement"]) == ("lost", "missing"), out
    assert inventory(clean) == before


async def test_late_mail_is_delayed(clean: MailTestBed, tmp_path: Path) -> None:
    async with mail_app(clean, delay=1.5) as app:
        config = watch_config(clean, tmp_path, url=app.url("delay"), slo="1s", deadline="8s")
        code, row, out = await check(config)
    assert code == 1, out
    assert (row["class"], row["reason"]) == ("delivery", "delayed"), row
    assert 1.5 <= row["delivery_seconds"] < 4, row
    assert row["placement"] == "inbox"


async def test_sent_twice_deletes_exactly_the_matched_one(
    clean: MailTestBed, tmp_path: Path
) -> None:
    async with mail_app(clean) as app:
        config = watch_config(clean, tmp_path, url=app.url("twice"))
        code, row, out = await check(config)
    assert code == 0, out
    left = clean.doveadm("search", "-u", USER, "mailbox", "INBOX", "BODY", row["token"]).stdout
    assert len(left.splitlines()) == 1  # the second copy: not ours to delete


@pytest.mark.parametrize(("mode", "match"), [
    ("iso2022jp",
     '{ subject = "確認コード", body = "確認コードは\\\\s*123456 です。トークン {token}" }'),
    ("sjis", '{ subject = "確認コード", body = "確認コードは\\\\s*123456" }'),
    ("html",
     '{ subject = "verify your account ✔", body = "code:\\\\s*123456\\\\s+token {token}" }'),
])
async def test_encoded_mail_matches(
    clean: MailTestBed, tmp_path: Path, mode: str, match: str
) -> None:
    async with mail_app(clean) as app:
        config = watch_config(clean, tmp_path, url=app.url(mode), match=match)
        code, row, out = await check(config)
    assert code == 0, out
    assert row["placement"] == "inbox"


async def test_big_message_is_fetched_only_in_part(clean: MailTestBed, tmp_path: Path) -> None:
    async with mail_app(clean) as app:
        config = watch_config(clean, tmp_path, url=app.url("big"))
        code, row, out = await check(config, "--transcript")
    assert code == 0, out[:2000]
    fetched = [line for line in row["transcript"] if "BODY[]<0>" in line]
    assert fetched and all("{262144}" in line for line in fetched), fetched[:3]


async def test_failing_trigger_ends_the_run_and_is_not_repeated(
    clean: MailTestBed, tmp_path: Path
) -> None:
    async with mail_app(clean) as app:
        config = watch_config(clean, tmp_path, url=app.url("fail"), interval="1h")
        code, row, out = await check(config)
        assert code == 1, out
        assert (row["class"], row["reason"], row["phase"]) == ("trigger", "trigger_failed",
                                                               "trigger")
        assert "HTTP 500" in row["detail"] and "mailer exploded" in row["detail"]
        assert "deliver" not in row["phases"] and row["duration_seconds"] < 2
        assert "placement" not in row and "delivery_seconds" not in row  # nothing was sent
        code, again, out = await check(config)
        assert app.hits == {"fail": 1}  # not called again within the interval
    assert code == 1 and again["reason"] == "trigger_failed" and "replayed" in again, out


async def test_ok_verdict_is_replayed_within_the_interval(
    clean: MailTestBed, tmp_path: Path
) -> None:
    async with mail_app(clean) as app:
        config = watch_config(clean, tmp_path, url=app.url("normal"), interval="1h")
        first = await check(config)
        second = await check(config)
        assert app.hits == {"normal": 1}
    assert first[0] == 0 and second[0] == 0, second[2]
    assert second[1]["placement"] == "inbox" and second[1]["replayed"]["next_trigger_in_seconds"]


async def test_a_run_cut_off_after_the_trigger_does_not_trigger_again(
    clean: MailTestBed, tmp_path: Path
) -> None:
    """A stop or crash after the trigger: the next run within the interval replays, it does
    not call the app again."""
    async with mail_app(clean) as app:
        config = load_config(watch_config(clean, tmp_path, url=app.url("never"),
                                          interval="1h", deadline="60s"))
        task = asyncio.create_task(run_probe("inbound", "signup", config))
        for _ in range(500):  # the app has been called
            if app.hits:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        code, row, out = await check(load_config_path(tmp_path))
        assert app.hits == {"never": 1}
    assert code == 1 and row["reason"] == "lost" and "replayed" in row, out
    assert "ended before its verdict" in row["detail"]


async def test_mailbox_login_failure_never_triggers_the_app(
    clean: MailTestBed, tmp_path: Path
) -> None:
    async with mail_app(clean) as app:
        config = watch_config(clean, tmp_path, url=app.url("normal"))
        (tmp_path / "pw-dave").write_text("Wrong-Password-1\n")
        code, row, out = await check(config)
        assert app.hits == {}  # no mail into the app's queue that nobody could watch for
    assert code == 1 and (row["class"], row["reason"], row["phase"]) == (
        "auth", "invalid_credentials", "auth"), out
    assert not (tmp_path / "state" / "inbound" / "signup.json").exists()


def load_config_path(tmp: Path) -> Path:
    return tmp / "mailcanary.toml"


@pytest.mark.parametrize("how", ["refused", "hang"])
async def test_unreachable_or_silent_trigger(
    clean: MailTestBed, tmp_path: Path, how: str
) -> None:
    async with mail_app(clean) as app:
        url = app.url("hang") if how == "hang" else "http://127.0.0.1:9/send"
        config = watch_config(clean, tmp_path, url=url)
        code, row, out = await check(config)
    assert code == 1, out
    assert (row["reason"], row["phase"]) == ("trigger_failed", "trigger")
    expected = "no response within 3 s" if how == "hang" else "ConnectError"
    assert expected in row["detail"], row


async def test_bearer_token_is_sent_and_never_shown(clean: MailTestBed, tmp_path: Path) -> None:
    token_file = tmp_path / "app-token"
    token_file.write_text(BEARER + "\n")
    async with mail_app(clean, bearer=BEARER) as app:
        good = watch_config(clean, tmp_path, url=app.url("normal"),
                            extra=f', bearer_token_file = "{token_file}"')
        code, row, out = await check(good, "--transcript")
        assert code == 0, out
        outputs = [out]
        for args in (("--transcript",), ()):
            _, text, err = await cli("--log-level", "debug", "check", "--config", str(good),
                                      "--inbound", "signup", *args)
            outputs.append(text + err)
        token_file.write_text("Wrong-Token-Value-1234\n")
        (tmp_path / "state" / "inbound" / "signup.json").unlink()
        code, row, out = await check(good, "--transcript")
        outputs.append(out)
    assert code == 1 and "HTTP 401" in row["detail"] and "***" in row["detail"], row
    assert app.requests[0]["headers"]["authorization"] == f"Bearer {BEARER}"
    for text in outputs:
        assert BEARER not in text
        assert "Wrong-Token-Value-1234" not in text
    state = (tmp_path / "state").rglob("*")
    assert all(BEARER not in p.read_text() for p in state if p.is_file())


async def test_bearer_over_https_with_a_private_ca(clean: MailTestBed, tmp_path: Path) -> None:
    token_file = tmp_path / "app-token"
    token_file.write_text(BEARER + "\n")
    async with mail_app(clean, bearer=BEARER, https=True) as app:
        plain = watch_config(clean, tmp_path, url=app.url("normal"),
                             extra=f', bearer_token_file = "{token_file}"')
        code, row, out = await check(plain)  # the app's CA is not in the system store
        assert code == 1 and row["reason"] == "trigger_failed", out
        assert "CERTIFICATE_VERIFY_FAILED" in row["detail"] and app.hits == {}
        (tmp_path / "state" / "inbound" / "signup.json").unlink()  # it was not triggered
        trusted = watch_config(clean, tmp_path, url=app.url("normal"), extra=(
            f', bearer_token_file = "{token_file}", ca_file = "{clean.ca_pem}"'))
        code, row, out = await check(trusted)
        assert code == 0, out
        assert app.hits == {"normal": 1}
    assert BEARER not in out


async def test_passive_watch(clean: MailTestBed, tmp_path: Path) -> None:
    match = '{ from = "app\\\\.example", subject = "verify" }'
    async with mail_app(clean) as app:
        config = watch_config(clean, tmp_path, url=None, match=match, deadline="1h")
        code, row, out = await check(config)
        assert code == 1 and row["reason"] == "lost" and row["placement"] == "missing", out
        deliver(clean, app, "normal", "passive1")
        code, row, out = await check(config)
        assert code == 0, out
        assert row["placement"] == "inbox" and 0 <= row["age_seconds"] < 30
        assert inventory(clean) == []  # deleted, and still remembered:
        code, row, out = await check(config)
        assert code == 0 and row["age_seconds"] >= 0, out
        memory = json.loads((tmp_path / "state" / "inbound" / "signup.json").read_text())
        assert memory["newest"]["placement"] == "inbox"


async def test_passive_watch_too_old_is_lost(clean: MailTestBed, tmp_path: Path) -> None:
    match = '{ subject = "verify" }'
    async with mail_app(clean) as app:
        deliver(clean, app, "normal", "passive2")
        config = watch_config(clean, tmp_path, url=None, match=match, deadline="2s")
        await asyncio.sleep(2.5)
        code, row, out = await check(config)
    assert code == 1 and row["reason"] == "lost", out
    assert "no matching message arrived" in row["detail"]

