"""The status page in the daemon's language: `[daemon] language = "ja"` turns the page's
own words, the hint and the durations into Japanese; codes (class/reason) stay as they are,
and the JSON keeps English keys."""

from __future__ import annotations

import time
from pathlib import Path

from mailcanary.config import config_from_dict
from mailcanary.daemon.status.history import History
from mailcanary.daemon.status.page import StatusPage
from mailcanary.diagnosis.hints import HINTS
from mailcanary.i18n import Text
from mailcanary.probes import PROBES
from mailcanary.result import ProbeResult


async def page_in(language: str, tmp_path: Path) -> tuple[str, str]:
    config = config_from_dict({
        "daemon": {"state_dir": str(tmp_path), "language": language},
        "accounts": [{"name": "alice", "address": "alice@example.test", "password": "x",
                      "imap": {"host": "imap.example.test"}}]})
    history = History(tmp_path, 30)
    await history.open()
    hint = Text(HINTS["invalid_credentials"])
    history.add(ProbeResult("imap", "alice", False, "auth", "invalid_credentials", "auth",
                            "NO", hint, 0.1, {}, finished_at=time.time() - 200))
    page = StatusPage(history, lambda: [("imap", "alice")], lambda: config, PROBES)
    status, ctype, html = await page.html("")
    _, _, body = await page.api("")
    await history.close()
    assert status == 200 and ctype.startswith("text/html")
    return html.decode(), body.decode()


async def test_japanese_page(tmp_path: Path) -> None:
    html, body = await page_in("ja", tmp_path)
    assert '<html lang="ja">' in html
    assert "メールの状態" in html and "原因と対処" in html and "異常" in html
    assert "パスワード" in html  # the hint, in Japanese
    assert "3\u00a0分" in html  # "for 3 min"
    assert "auth/invalid_credentials" in html  # codes are never translated
    assert '"reason": "invalid_credentials"' in body and '"class": "auth"' in body


async def test_english_page(tmp_path: Path) -> None:
    html, _ = await page_in("en", tmp_path)
    assert "Mail status" in html and "メール" not in html
    assert "The server rejected the username or password." in html
    assert "3\u00a0min" in html
