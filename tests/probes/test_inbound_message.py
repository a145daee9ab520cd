"""Decoding an app's message as its reader sees it: charsets, encodings, HTML, multipart."""

from __future__ import annotations

import base64
import re
from email.header import Header
from email.message import EmailMessage

import pytest

from mailcanary.probes.inbound.finder import uid_set
from mailcanary.probes.inbound.message import html_text, matches, readable


def raw(headers: list[tuple[str, str]], body: bytes) -> bytes:
    head = "".join(f"{k}: {v}\r\n" for k, v in headers).encode()
    return head + b"\r\n" + body


JP = "パスワード再設定のご案内"
JP_BODY = "認証コード 654321 を入力してください。"

MESSAGES = [
    ("iso-2022-jp, encoded-word subject",
     raw([("From", "=?ISO-2022-JP?B?GyRCJTUhPCVTJTkbKEI=?= <info@app.example>"),
          ("Subject", Header(JP, "iso-2022-jp").encode()),
          ("Content-Type", "text/plain; charset=ISO-2022-JP")], JP_BODY.encode("iso-2022-jp")),
     {"from": "サービス", "subject": "再設定", "body": r"認証コード\s*654321"}),
    ("shift_jis base64 body, cp932-only character",
     raw([("Subject", Header(JP, "shift_jis").encode()),
          ("Content-Type", 'text/plain; charset="Shift_JIS"'),
          ("Content-Transfer-Encoding", "base64")],
         base64.encodebytes(("①" + JP_BODY).encode("cp932"))),
     {"subject": "ご案内", "body": "①認証コード 654321"}),
    ("html only, quoted-printable, entities",
     raw([("Subject", "=?utf-8?q?Reset_=E2=80=93_App?="),
          ("Content-Type", "text/html; charset=utf-8"),
          ("Content-Transfer-Encoding", "quoted-printable")],
         b"<html><head><title>t</title><style>.x{}</style></head><body><p>Code:=\r\n"
         b" <strong>654321</strong></p><p>Caf=C3=A9 &amp; co&nbsp;ok</p><script>var "
         b"x=1</script></body></html>"),
     {"subject": "reset \u2013 app", "body": r"code:\s+654321\s+café & co ok"}),
]


@pytest.mark.parametrize(("label", "message", "patterns"), MESSAGES, ids=[m[0] for m in MESSAGES])
def test_decoded_fields_match(label: str, message: bytes, patterns: dict[str, str]) -> None:
    got = readable(message)
    compiled = {k: re.compile(v, re.IGNORECASE) for k, v in patterns.items()}
    assert matches(got, compiled), got


def test_multipart_alternative_and_attachment() -> None:
    msg = EmailMessage()
    msg["From"] = "App <no-reply@app.example>"
    msg["Subject"] = "Your code"
    msg.set_content("plain part 111111")
    msg.add_alternative("<p>html part <b>222222</b></p>", subtype="html")
    msg.add_attachment(b"attachment 333333", maintype="text", subtype="plain",
                       filename="a.txt")
    got = readable(msg.as_bytes())
    assert "111111" in got.body and "222222" in got.body
    assert "333333" not in got.body  # attachments are not what the user reads as the mail


def test_every_pattern_must_match() -> None:
    got = readable(raw([("Subject", "Verify"), ("From", "a@b")], b"code 123456"))
    assert matches(got, {"subject": re.compile("verify", re.I), "body": re.compile(r"\d{6}")})
    assert not matches(got, {"subject": re.compile("verify", re.I), "from": re.compile("x@y")})


def test_html_text_drops_markup_not_words() -> None:
    assert " ".join(html_text("<div>a<br>b</div><style>c</style>d&lt;").split()) == "a b d<"


def test_encoded_words_in_wider_japanese_codecs() -> None:
    """Shift_JIS as mailers send it is cp932 (① and friends); Python's shift_jis refuses it."""
    word = "=?Shift_JIS?B?" + base64.b64encode("①確認コード".encode("cp932")).decode() + "?="
    got = readable(f"From: =?utf-8?q?J=C3=BCrgen?= <a@app.example>\r\nSubject: Re: {word} "
                   "done\r\n\r\nhi".encode())
    assert got.subject == "Re: ①確認コード done"
    assert got.from_ == "Jürgen <a@app.example>"


@pytest.mark.parametrize(("uids", "text"), [
    ([5], "5"), ([1, 2, 3, 7], "1:3,7"), ([1, 3, 4, 5, 9, 10], "1,3:5,9:10"),
])
def test_uid_set(uids: list[int], text: str) -> None:
    assert uid_set(uids) == text
