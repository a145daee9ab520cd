"""Notifications in the daemon's language: `[daemon] language = "ja"` turns the webhook's
`hint`, Slack's text, Alertmanager's annotations (real HTTP receivers) and the e-mail (the
test bed's real SMTP and mailbox) Japanese, never the payload's keys or codes; a firing
alert saved in `state_dir` keeps its hint translatable."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import time
from dataclasses import replace
from pathlib import Path

import pytest

from mailcanary.config import Config, load_config
from mailcanary.daemon.alerts import AlertTracker
from mailcanary.daemon.alerts.notify import AppriseSink
from mailcanary.daemon.alerts.sinks import make_sink, readable, summary
from mailcanary.diagnosis import Where, failure
from mailcanary.i18n import translator
from mailcanary.result import ProbeResult
from mailcanary.testbed import MailTestBed
from tests.daemon.test_alerts import PAYLOAD_KEYS
from tests.helpers.daemon_support import bed_account
from tests.helpers.receivers import receiver


def config(tmp: Path, url: str, language: str | None) -> Config:
    state = tmp / "state"
    state.mkdir(parents=True, exist_ok=True)
    line = f'language = "{language}"\n' if language else ""
    path = tmp / "mailcanary.toml"
    path.write_text(
        f'[daemon]\nstate_dir = "{state}"\n{line}\n'
        f'[[alerts]]\nkind = "webhook"\nurl = "{url}/hook"\n'
        f'[[alerts]]\nkind = "slack"\nurl = "{url}/slack"\n'
        f'[[alerts]]\nkind = "alertmanager"\nurl = "{url}/am"\n'
    )
    return load_config(path)


def failed(at: float) -> ProbeResult:
    fail = failure("invalid_credentials", "NO [AUTHENTICATIONFAILED] Authentication failed.",
                   Where("imap.spmode.ne.jp", 993, provider="docomo"), "auth")
    return ProbeResult(probe="imap", target="shop", ok=False, cls=fail.cls, reason=fail.reason,
                       phase="auth", detail=fail.detail, hint=fail.hint, duration_seconds=0.1,
                       phases={}, finished_at=at)


async def test_sinks_speak_the_daemon_language(tmp_path: Path) -> None:
    tracker = AlertTracker(after=1, repeat=3600)
    event = tracker.observe(failed(1_800_000_000.0), 1_800_000_000.0, ttl=600)
    assert event is not None
    ja = translator("ja")
    async with receiver() as rec:
        cfg = config(tmp_path, rec.url, "ja")
        for conf in cfg.alerts:
            sink = make_sink(conf, lambda: cfg)
            await sink.send(event)
            await sink.aclose()
    [hook] = rec.bodies("/hook")
    assert set(hook) == PAYLOAD_KEYS
    assert (hook["class"], hook["reason"], hook["phase"]) == ("auth", "invalid_credentials",
                                                              "auth")
    assert hook["hint"] == ja.text(event.hint)
    assert hook["hint"].startswith("ドコモメール（imap.spmode.ne.jp）では")
    assert "My docomo のメール設定" in hook["hint"]
    assert hook["detail"] == event.detail  # the server's words stay as they were
    [slack] = rec.bodies("/slack")
    assert slack["text"].splitlines()[:3] == [
        "[mailcanary 障害発生] imap shop: auth/invalid_credentials（段階: auth）",
        "2027-01-15T08:00:00Z から失敗が続いています（1 回連続）",
        "対処方法: " + hook["hint"],
    ]
    [[alert]] = rec.bodies("/am/api/v2/alerts")
    assert alert["labels"]["reason"] == "invalid_credentials"
    assert alert["annotations"]["hint"] == hook["hint"]
    assert alert["annotations"]["summary"].startswith("[mailcanary 障害発生]")


async def test_english_when_the_config_says_so_whatever_the_locale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANG", "ja_JP.UTF-8")
    monkeypatch.delenv("LC_ALL", raising=False)
    tracker = AlertTracker(after=1, repeat=3600)
    event = tracker.observe(failed(0.0), 0.0, ttl=600)
    assert event is not None
    async with receiver() as rec:
        for language, path in (("en", "en"), (None, "locale")):
            cfg = config(tmp_path / path, f"{rec.url}/{path}", language)
            sink = make_sink(cfg.alerts[0], lambda cfg=cfg: cfg)  # type: ignore[misc]
            await sink.send(event)
            await sink.aclose()
    assert rec.bodies("/en/hook")[0]["hint"] == str(event.hint)
    assert rec.bodies("/locale/hook")[0]["hint"] == translator("ja").text(event.hint)


def test_resolved_words_and_saved_state_stay_translatable() -> None:
    tracker = AlertTracker(after=1, repeat=3600)
    tracker.observe(failed(0.0), 0.0, ttl=600)
    saved = json.loads(json.dumps(tracker.dump()))  # what state_dir holds
    restarted = AlertTracker(after=1, repeat=3600)
    restarted.load(saved)
    ok = ProbeResult(probe="imap", target="shop", ok=True, cls="ok", reason="ok", phase=None,
                     detail="", hint="", duration_seconds=0.1, phases={}, finished_at=60.0)
    resolved = restarted.observe(ok, 60.0, ttl=600)
    assert resolved is not None and resolved.status == "resolved"
    ja = translator("ja")
    assert ja.text(resolved.hint).startswith("ドコモメール")
    assert summary(resolved, ja) == (
        "[mailcanary 復旧] imap shop: auth/invalid_credentials（段階: auth）")
    assert "復旧しました（1970-01-01T00:00:00Z から 1 回連続で失敗していました）" in readable(
        resolved, ja)
    # An older state file without the parts: the English hint, no error.
    del saved[0]["last"]["hint_text"]
    older = AlertTracker(after=1, repeat=3600)
    older.load(saved)
    again = older.observe(ok, 60.0, ttl=600)
    assert again is not None and ja.text(again.hint) == str(failed(0.0).hint)


@pytest.mark.testbed
async def test_email_in_japanese(testbed: MailTestBed, tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    state = tmp_path / "state"
    state.mkdir()
    path = tmp_path / "mailcanary.toml"
    path.write_text(
        f'[daemon]\nstate_dir = "{state}"\nlanguage = "ja"\n\n'
        + bed_account(testbed, "mailer", "dave", secrets, imap=False)
        + '\n[[alerts]]\nkind = "email"\naccount = "mailer"\nto = ["carol@example.test"]\n'
    )
    cfg = load_config(path)
    target = f"shop-ja-{time.time_ns()}"
    event = AlertTracker(after=1, repeat=3600).observe(
        replace(failed(1_800_000_000.0), target=target), 1_800_000_000.0,
        ttl=600)
    assert event is not None
    sink = make_sink(cfg.alerts[0], lambda: cfg)
    await sink.send(event)
    await sink.aclose()
    ja = translator("ja")
    deadline = time.monotonic() + 15
    while True:
        parsed = [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
                  for p in testbed.maildir("carol").rglob("*")
                  if p.is_file() and p.parent.name in ("new", "cur")]
        mails = [m for m in parsed if target in str(m["Subject"])]
        if mails or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert mails, "the alert mail did not arrive"
    mail = mails[0]
    assert mail["Subject"] == summary(event, ja)
    assert str(mail["Subject"]).startswith("[mailcanary 障害発生] imap " + target)
    body = mail.get_content()
    assert "対処方法: " + ja.text(event.hint) in body
    assert "2027-01-15T08:00:00Z から失敗が続いています（1 回連続）" in body


async def test_apprise_and_server_incidents_in_japanese() -> None:
    event = AlertTracker(after=1, repeat=3600).observe(failed(1_800_000_000.0),
                                                       1_800_000_000.0, ttl=600)
    assert event is not None
    incident = replace(event, scope="server", server="imap.spmode.ne.jp:993",
                       provider="docomo", targets=tuple(f"t{n}" for n in range(25)), count=25)
    ja = translator("ja")
    async with receiver() as rec:
        sink = AppriseSink([f"json://127.0.0.1:{rec.port}/apprise"], lambda: ja)
        for sent in (event, incident):
            await sink.send(sent)
        await sink.aclose()
    target_note, server_note = rec.bodies("/apprise")
    assert target_note["title"] == summary(event, ja)
    assert target_note["title"].startswith("[mailcanary 障害発生] imap shop")
    assert "対処方法: " + ja.text(event.hint) in target_note["message"]
    assert server_note["title"] == (
        "[mailcanary 障害発生] サーバー imap.spmode.ne.jp:993: 対象 25 件が "
        "auth/invalid_credentials")
    assert ("サーバー imap.spmode.ne.jp:993 (docomo): 対象 25 件が 2027-01-15T08:00:00Z から"
            "失敗しています（t0, t1") in server_note["message"]
    assert "t19 ほか 5 件）" in server_note["message"]
    # English stays exactly what it was.
    assert summary(incident) == ("[mailcanary FIRING] server imap.spmode.ne.jp:993: 25 targets "
                                 "auth/invalid_credentials")
    assert "and 5 more" in readable(incident)
