"""Reload when the config file or an included file changes, as on SIGHUP.

inotify through watchfiles (its Rust watcher runs in a thread: the event loop never
blocks). We watch directories, not files, non-recursively: the main file's directory and
each include glob's fixed part. That sees an editor's save-by-rename, a new file matching
a glob, and Kubernetes' ConfigMap update, which swaps the directory symlink ``..data`` to a
new ``..2026_...`` directory (the files themselves are symlinks through it and never
change in place). A batch of events (debounced) leads to a reload only when the content
of the files differs from the last one seen (a hash kept in memory only), so the daemon's
own writes or an unrelated file in the same directory cost a read, never a reload. After
each reload the set of directories is worked out again (a new glob, a swapped symlink).
A broken edit is the reload's business: the old config keeps running and the log says why.
"""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog
from watchfiles import Change, awatch

from mailcanary.config.includes import IncludeError, expand

log = structlog.get_logger("mailcanary.daemon.confwatch")

DEBOUNCE_MS = 400  # an editor or `kubectl apply` writes several events in a burst
RETRY_SECONDS = 2.0  # a watched directory vanished: look again


class ConfigWatcher:
    def __init__(self, path: Path, reload: Callable[[], Awaitable[bool]]) -> None:
        self.path = path.absolute()
        self.reload = reload
        self.dirs: list[Path] = [self.path.parent]
        self.files: list[Path] = [self.path]
        self.patterns: list[str] = []
        self.reloads = 0  # reloads this watcher started (tests, logs)

    def _snapshot(self) -> str:
        """The content of every file the config is made of (in a worker thread)."""
        try:
            _raw, sources = expand(self.path)
            self.files = [f.absolute() for f in sources.files]
            self.dirs = [d.absolute() for d in sources.watched_dirs()]
            self.patterns = [str(p.absolute()) for p in sources.patterns]
        except IncludeError:
            pass  # a broken file: keep watching what we knew; the reload says what is wrong
        digest = hashlib.sha256()
        for file in self.files:
            digest.update(str(file).encode() + b"\0")
            try:
                digest.update(file.read_bytes())
            except OSError as exc:
                digest.update(f"unreadable: {exc.errno}".encode())
        return digest.hexdigest()

    def _relevant(self, _change: Change, name: str) -> bool:
        path = Path(name)
        return (path in self.files or path.name.startswith("..")  # Kubernetes' ..data swap
                or any(fnmatch.fnmatch(name, p) for p in self.patterns)
                or any(path in f.parents for f in self.files))

    async def run(self) -> None:
        seen = await asyncio.to_thread(self._snapshot)
        while True:
            try:
                seen = await self._watch(seen)
            except (OSError, RuntimeError) as exc:  # a watched directory is gone, for one
                log.warning("config_watch_restarted", error=str(exc),
                            dirs=[str(d) for d in self.dirs])
                await asyncio.sleep(RETRY_SECONDS)
                seen = await self._changed(seen)

    async def _watch(self, seen: str) -> str:
        """Until one reload (then the caller watches the directories as they are now)."""
        dirs = [d for d in self.dirs if d.is_dir()] or [self.path.parent]
        async for _changes in awatch(*dirs, watch_filter=self._relevant, recursive=False,
                                     debounce=DEBOUNCE_MS, step=50,
                                     ignore_permission_denied=True):
            now = await self._changed(seen)
            if now != seen:
                return now
        return seen

    async def _changed(self, seen: str) -> str:
        now = await asyncio.to_thread(self._snapshot)
        if now != seen:
            self.reloads += 1
            log.info("config_changed", config=str(self.path), files=len(self.files))
            await self.reload()
        return now
