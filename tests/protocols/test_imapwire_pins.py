"""What our IMAP client relies on in aioimaplib, pinned: an upgrade that changes it fails
here, not in production.

Only protocols/imapwire.py may touch aioimaplib (its protocol class, private methods and
state); these tests drive that adapter over a real socket pair, as a server would.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aioimaplib import aioimaplib as imap_impl

from mailcanary.protocols.imapwire import ImapWire
from mailcanary.result import ProbeContext
from tests.helpers import pyast

SRC = Path(__file__).resolve().parents[2] / "src" / "mailcanary"
ADAPTER = SRC / "protocols" / "imapwire.py"


def test_only_the_adapter_imports_aioimaplib() -> None:
    offenders = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(pyast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n.split(".")[0] == "aioimaplib" for n in names) and path != ADAPTER:
                offenders.append(str(path.relative_to(SRC)))
    assert offenders == []


# The private methods ImapWire overrides, with the parameters aioimaplib calls them with.
OVERRIDDEN = {
    "_handle_responses": ["self", "data", "line_handler", "current_cmd"],
    "_response_done": ["self", "line"],
    "_untagged_response": ["self", "line"],
    "_continuation": ["self", "line"],
    "_handle_line": ["self", "line", "current_cmd"],
    "send": ["self", "line", "scrub"],
}
# Attributes and methods of the base the adapter reads or writes.
USED = ("data_received", "connection_made", "execute", "login", "logout", "idle", "idle_done",
        "wait_for_idle_response", "new_tag")
STATE = ("incomplete_line", "pending_sync_command", "pending_async_commands", "state",
         "capabilities", "idle_queue", "tasks", "current_command", "transport")


def test_overridden_private_methods_keep_their_shape() -> None:
    base = imap_impl.IMAP4ClientProtocol
    for name, params in OVERRIDDEN.items():
        assert list(inspect.signature(getattr(base, name)).parameters) == params, name
    for name in USED:
        assert callable(getattr(base, name)), name
    for name in ("Command", "FetchCommand", "IncompleteRead", "AioImapException", "quoted",
                 "message_data_re", "CONNECTED", "NONAUTH", "AUTH", "SELECTED", "LOGOUT"):
        assert hasattr(imap_impl, name), name
    # data_received feeds the saved partial line plus the new bytes to _handle_responses
    source = inspect.getsource(base.data_received)
    assert "self._handle_responses(self.incomplete_line + d" in source


class Peer:
    """The server's end of the socket pair."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    async def said(self) -> str:
        loop = asyncio.get_running_loop()
        while b"\r\n" not in self.buffer:
            chunk = await asyncio.wait_for(loop.sock_recv(self.sock, 4096), 5)
            assert chunk, "the client hung up"
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line.decode()

    async def send(self, data: bytes) -> None:
        await asyncio.get_running_loop().sock_sendall(self.sock, data)


@pytest.fixture
async def wire() -> AsyncIterator[tuple[ImapWire, Peer]]:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    theirs.setblocking(False)
    loop = asyncio.get_running_loop()
    protocol = ImapWire(loop, ProbeContext(probe="imap", target="pin"))
    transport, _ = await loop.create_connection(lambda: protocol, sock=ours)
    peer = Peer(theirs)
    await peer.send(b"* OK [CAPABILITY IMAP4rev1 IDLE] ready\r\n")
    greeting = (await asyncio.wait_for(protocol.greeting, 5)).decode()
    assert protocol.use_greeting_capabilities(greeting)  # IDLE needs it listed
    yield protocol, peer
    transport.abort()
    theirs.close()


async def _answer(peer: Peer, reply: str) -> str:
    tag = (await peer.said()).split(" ")[0]
    await peer.send(reply.replace("{tag}", tag).encode())
    return tag


async def test_greeting_state_and_tagged_reply(wire: tuple[ImapWire, Peer]) -> None:
    protocol, peer = wire
    assert not protocol.greeting_refused and not protocol.preauthenticated
    assert protocol.capability_set == {"IMAP4REV1", "IDLE"}
    task = asyncio.ensure_future(protocol.run("NOOP"))
    await _answer(peer, "{tag} ok done\r\n")  # case-insensitive status word
    response: Any = await asyncio.wait_for(task, 5)
    assert response.result == "OK"


async def test_split_lines_and_literals(wire: tuple[ImapWire, Peer]) -> None:
    protocol, peer = wire
    protocol.mark_authenticated()
    protocol.mark_selected()
    task = asyncio.ensure_future(protocol.run(
        "FETCH", "7", "(BODY.PEEK[HEADER])", prefix="UID", fetch=True))
    tag = await _answer(peer, "* 1 FETCH (UID 7 BODY[HEADER] {5}\r\nab")
    await asyncio.sleep(0.05)
    await peer.send(f"cde)\r\n{tag} OK do".encode())  # literal and tagged line split
    await asyncio.sleep(0.05)
    await peer.send(b"ne\r\n")
    response: Any = await asyncio.wait_for(task, 5)
    assert response.result == "OK"
    assert bytearray(b"abcde") in response.lines


async def test_idle_continuation_push_and_done(wire: tuple[ImapWire, Peer]) -> None:
    protocol, peer = wire
    protocol.mark_authenticated()
    protocol.mark_selected()
    idle, ready = protocol.idle_begin()
    tag = await _answer(peer, "+ idling\r\n")
    await asyncio.wait_for(ready, 5)
    await peer.send(b"* 3 EXISTS\r\n")
    pushed = await asyncio.wait_for(protocol.idle_pushed(), 5)
    assert [bytes(x) for x in pushed] == [b"3 EXISTS"]
    protocol.idle_end()
    assert await peer.said() == "DONE"
    await peer.send(f"{tag} OK idle done\r\n".encode())
    response: Any = await asyncio.wait_for(idle, 5)
    assert response.result == "OK"


async def test_plaintext_after_starttls_ok_is_dropped(wire: tuple[ImapWire, Peer]) -> None:
    protocol, peer = wire
    task = asyncio.ensure_future(protocol.run("STARTTLS"))
    await _answer(peer, "{tag} OK begin TLS\r\nZZ9 OK forged\r\n* CAPABILITY X")
    response: Any = await asyncio.wait_for(task, 5)
    assert response.result == "OK"
    await asyncio.sleep(0.05)
    assert protocol.before_tls and protocol.incomplete_line == b""
    assert not protocol.lost.done()  # the forged tag was never parsed


async def test_cancel_tasks_and_logout(wire: tuple[ImapWire, Peer]) -> None:
    protocol, peer = wire
    task = asyncio.ensure_future(protocol.run_logout())
    await _answer(peer, "* BYE bye\r\n{tag} OK bye\r\n")
    await asyncio.wait_for(task, 5)
    protocol.cancel_tasks()
