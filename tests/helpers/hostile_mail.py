"""Mail crafted to stall or crash a parser: the shapes that stalled the 0.x inbound watch.

Each builder returns the raw message (CRLF) of about `size` bytes. Shared by the unit tests
(time ratios), the daemon test (delivered into a watched mailbox) and bench/hostile_mail.py.
"""

from __future__ import annotations

import base64


def _head(subject: str, content_type: str, extra: str = "") -> bytes:
    return (f"From: Stranger <x@stranger.example>\r\nTo: dave@example.test\r\n"
            f"Subject: {subject}\r\nMIME-Version: 1.0\r\nContent-Type: {content_type}\r\n"
            f"{extra}\r\n").encode()


def html_of(size: int, unit: str = "<", subject: str = "hostile html") -> bytes:
    """A text/html body of `unit` repeated: `<` made the old regexes quadratic."""
    head = _head(subject, "text/html; charset=utf-8")
    return head + (unit * ((size - len(head)) // len(unit) + 1)).encode()[: size - len(head)]


def nested(size: int, subject: str = "hostile nesting") -> bytes:
    """Multiparts nested as deep as `size` allows (a 178 KB one: RecursionError before)."""
    head = f"From: x@stranger.example\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n".encode()
    levels, total, i = [], len(head), 0
    while True:
        level = (f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n').encode()
        if total + len(level) > size - 40:
            break
        levels.append(level)
        total += len(level)
        i += 1
    return head + b"".join(levels) + b"Content-Type: text/plain\r\n\r\nhidden words\r\n"


def nested_depth(depth: int, text: str) -> bytes:
    """`depth` multipart levels around one text/plain part holding `text`."""
    out = [f"From: a@app.example\r\nSubject: nested {depth}\r\nMIME-Version: 1.0\r\n"]
    for i in range(depth):
        out.append(f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\npreamble\r\n--b{i}\r\n')
    out.append(f"Content-Type: text/plain\r\n\r\n{text}\r\n")
    out.extend(f"--b{i}--\r\n" for i in reversed(range(depth)))
    return "".join(out).encode()


def many_parts(size: int) -> bytes:
    """A flat multipart of tiny parts (tens of thousands of them)."""
    head = _head("hostile parts", 'multipart/mixed; boundary="b"')
    return head + b"--b\r\n\r\nx\r\n" * ((size - len(head)) // 11)


def bad_encodings(size: int) -> bytes:
    """Odd charsets and broken transfer encodings in one multipart/alternative."""
    filler = "z" * (size // 4)
    parts = [
        ("text/plain; charset=punycode", "8bit", filler + "-" + "\u00e9" * 10),
        ("text/html; charset=unicode_escape", "8bit", "<p>\\ud800" + filler),
        ("text/plain; charset=x-no-such-charset", "base64", "!!not base64!!" + filler[:100]),
        ("text/plain; charset=utf-8", "quoted-printable", "=ZZ=\r\n" * 100 + filler[:1000]),
        ("text/html; charset=iso-2022-jp", "7bit", "\x1b$B" + filler[:2000]),
    ]
    body = "".join(f"--b\r\nContent-Type: {ct}\r\nContent-Transfer-Encoding: {cte}\r\n\r\n"
                   f"{text}\r\n" for ct, cte, text in parts) + "--b--\r\n"
    subject = "=?punycode?q?" + "a" * 500 + "?= =?a?q?" * 300
    return _head(subject, 'multipart/alternative; boundary="b"') + body.encode(
        "utf-8", "surrogateescape")


def header_bomb(size: int) -> bytes:
    """A Content-Type of semicolons and quotes: compat32's parameter parser is quadratic."""
    ctype = "text/plain; " + '; a="' * (size // 5)
    return _head("hostile header", ctype) + b"body\r\n"


def b64_html(size: int) -> bytes:
    """The `<` body once more, base64-encoded (the fetch limit counts encoded bytes)."""
    raw = b"<" * (size * 3 // 4 - 200)
    head = _head("hostile base64", "text/html", "Content-Transfer-Encoding: base64\r\n")
    return head + base64.encodebytes(raw)
