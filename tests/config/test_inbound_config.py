"""`[[inbound]]`: the contract's keys, and every mistake named by its key path (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailcanary.config import load_config
from mailcanary.probes.selection import select_probes
from tests.helpers.support import cli

BASE = """
[[accounts]]
name = "bob"
address = "bob@example.test"
password_env = "BOB_PW"
imap = { host = "imap.example.test" }

[[accounts]]
name = "alice"
address = "alice@example.test"
password_env = "ALICE_PW"
smtp = { host = "smtp.example.test" }

[[routes]]
name = "alice-to-bob"
from = "alice"
to = "bob"
"""

GOOD = BASE + r"""
[[inbound]]
name = "signup-mail"
account = "bob"
interval = "15m"
deadline = "5m"
slo = "60s"
[inbound.match]
from = 'no-reply@app\.example'
subject = "Verify"
body = '\b\d{6}\b {token}'
[inbound.trigger]
url = "https://app.example/test/signup"
method = "post"
body = '{"email": "{address}", "token": "{token}"}'
headers = { "Content-Type" = "application/json" }
bearer_token_file = "app-token"

[[inbound]]
name = "nightly-report"
account = "bob"
match = { subject = "report" }
cleanup = "keep"
"""


def test_good_inbound_config(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(GOOD)
    cfg = load_config(path)
    signup, nightly = cfg.inbound
    assert cfg.inbound_watch("signup-mail") is signup
    assert signup.interval == 900 and signup.deadline == 300 and signup.slo == 60
    assert signup.trigger is not None and signup.trigger.method == "POST"
    assert signup.cleanup == "delete" and signup.triggered
    patterns = signup.match.patterns("abc123")
    assert patterns["body"].search("code 123456 ABC123")  # case-insensitive, token put in
    assert not patterns["body"].search("code 123456 abc124")
    assert nightly.trigger is None and nightly.cleanup == "keep" and nightly.deadline == 300


BAD = [
    ('match = { subject = "(" }', "inbound[0].match.subject: not a valid regular expression"),
    ('match = { body = "[a-" }', "inbound[0].match.body: not a valid regular expression"),
    ('match = { from = "x", subjekt = "y" }', "inbound[0].match.subjekt: unknown key"),
    ("match = {}", "inbound[0].match: give at least one of from, subject, body"),
    ('match = { subject = "x" }\nfrequency = "1m"', "inbound[0].frequency: unknown key"),
    ('match = { subject = "x" }\ntrigger = { url = "ftp://app.example/x" }',
     "inbound[0].trigger.url: must be an absolute http:// or https:// URL"),
    ('match = { subject = "x" }\ntrigger = { url = "app.example/x" }',
     "inbound[0].trigger.url: must be an absolute http:// or https:// URL"),
    ('match = { subject = "x" }\ntrigger = { url = "http://app.example/x", '
     'bearer_token_env = "T" }', "inbound[0].trigger: a bearer token is sent only over https"),
    ('match = { subject = "x" }\ntrigger = { url = "https://a.example/", bearer_token_env = "T",'
     ' bearer_token_file = "f" }', "inbound[0].trigger: set at most one of bearer_token_file"),
    ('match = { subject = "x" }\ntrigger = { url = "https://a.example/", '
     'headers = { Authorization = "Bearer x" } }', "inbound[0].trigger.headers: set the token"),
    ('match = { subject = "x" }\ntrigger = { url = "https://a.example/", method = "DELETE" }',
     "inbound[0].trigger.method"),
    ('match = { subject = "x" }\ncleanup = "move"', "inbound[0].cleanup"),
]


@pytest.mark.parametrize(("lines", "problem"), BAD)
async def test_bad_inbound_is_exit_2_with_key_path(
    tmp_path: Path, lines: str, problem: str
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(BASE + f'\n[[inbound]]\nname = "w"\naccount = "bob"\n{lines}\n')
    code, out, err = await cli("validate", "--config", str(path))
    assert code == 2, out + err
    assert problem in err, err
    assert "Traceback" not in err


@pytest.mark.parametrize(("watch", "problem"), [
    ('name = "alice-to-bob"\naccount = "bob"',
     "inbound[0].name: 'alice-to-bob' is already a route's name"),
    ('name = "w"\naccount = "alice"', "inbound[0].account: account 'alice' has no imap"),
    ('name = "w"\naccount = "nobody"', "inbound[0].account: no account named 'nobody'"),
    ('name = "bad name"\naccount = "bob"',
         "inbound[0].name: 'bad name': a name may use only the letters A to Z"),
])
async def test_references(tmp_path: Path, watch: str, problem: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(BASE + f'\n[[inbound]]\n{watch}\nmatch = {{ subject = "x" }}\n')
    code, _, err = await cli("validate", "--config", str(path))
    assert code == 2 and problem in err, err


async def test_duplicate_watch_names(tmp_path: Path) -> None:
    watch = '\n[[inbound]]\nname = "w"\naccount = "bob"\nmatch = { subject = "x" }\n'
    path = tmp_path / "c.toml"
    path.write_text(BASE + watch + watch)
    code, _, err = await cli("validate", "--config", str(path))
    assert code == 2 and "inbound[1].name: duplicate inbound watch name 'w'" in err, err


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
def test_bearer_over_plain_http_to_loopback(tmp_path: Path, host: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(BASE + f'\n[[inbound]]\nname = "w"\naccount = "bob"\nmatch = {{ subject = '
                    f'"x" }}\ntrigger = {{ url = "http://{host}:8080/t", '
                    'bearer_token_env = "T" }\n')
    assert load_config(path).inbound[0].trigger is not None


def test_selection(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(GOOD)
    cfg = load_config(path)
    everything = select_probes(cfg)
    assert everything[-2:] == [("inbound", "signup-mail"), ("inbound", "nightly-report")]
    assert select_probes(cfg, {"inbound": ["nightly-report"]}) == [("inbound", "nightly-report")]
    assert ("inbound", "signup-mail") not in select_probes(cfg, {"route": ["alice-to-bob"]})


async def test_unknown_inbound_name_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(GOOD)
    code, _, err = await cli("check", "--config", str(path), "--inbound", "nope")
    assert code == 2
    assert "no inbound watch named 'nope' (inbound watches: nightly-report, signup-mail)" in err
