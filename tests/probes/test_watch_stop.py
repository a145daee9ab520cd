"""A watch stopped by the other one (a bounce found while the receiver's watch waits)
leaves its session usable, even when the stop comes while IDLE is still starting.

Real Dovecot behind a proxy that holds back its "+ idling" continuation: the stop lands
between our IDLE and the server's go-ahead. The session must end that IDLE (DONE) before
its next command, or the command waits forever (seen under load as a 50 s cleanup)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

from mailcanary.config import load_config
from mailcanary.probes.mailbox.watcher import Watcher
from mailcanary.protocols.imap import imap_client_for
from mailcanary.protocols.signin import imap_login
from mailcanary.result import ProbeContext
from mailcanary.testbed import MailTestBed
from tests.helpers.support import account, endpoint, password_file, write_config

HOLD = 1.0  # seconds the proxy holds back a chunk holding the IDLE continuation


@contextlib.asynccontextmanager
async def holding_proxy(host: str, port: int, marker: bytes) -> AsyncIterator[int]:
    """Plain TCP proxy; server->client chunks containing `marker` are delayed HOLD s."""
    tasks: set[asyncio.Task[None]] = set()

    async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   hold: bool) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await reader.read(65536):
                if hold and marker in data:
                    await asyncio.sleep(HOLD)
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(host, port)
        for task in (pump(client_r, server_w, False), pump(server_r, client_w, True)):
            tasks.add(asyncio.create_task(task))

    server = await asyncio.start_server(handle, host, 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_stop_while_idle_starts(testbed: MailTestBed, tmp_path: Path) -> None:
    async with holding_proxy(testbed.host, testbed.imap_port, b"+ idling") as port:
        pw = password_file(tmp_path, testbed.user("carol").password)
        config = load_config(write_config(tmp_path, account(
            "carol", password_file=pw, imap=endpoint(testbed.host, port, "none"))))
        ctx = ProbeContext(probe="roundtrip", target="t")
        client = imap_client_for(ctx, config.account("carol"))
        try:
            await client.connect()
            await imap_login(client, config.account("carol"))
            watcher = Watcher(ctx, client, token_header="X-Mailcanary-Token")
            await watcher.prepare()  # ends idling: its continuation was held back too
            await watcher.leave_idle()
            stop = asyncio.Event()
            asyncio.get_running_loop().call_later(0.2, stop.set)  # mid IDLE start
            started = time.monotonic()
            await watcher._pause(5.0, stop)
            assert time.monotonic() - started < HOLD, "the stop did not end the wait"
            async with asyncio.timeout(5):
                await watcher.select(watcher.inbox, readonly=True)  # DONE first, then this
                await client.noop()
            await client.logout()
        finally:
            client.close()
