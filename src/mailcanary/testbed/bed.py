"""The real mail test bed: Dovecot (IMAP, LMTP, Sieve) and Postfix under one directory."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import trustme

from . import templates
from .certs import FAULT_KINDS, CertFiles, make_certs
from .errors import TestBedError
from .install import find_program
from .users import DEFAULT_USERS, TestBedUser

READY_TIMEOUT = 10.0  # seconds for a service to greet
STOP_TIMEOUT = 5.0  # seconds for SIGTERM before SIGKILL
_SUN_PATH_MAX = 107  # sockaddr_un.sun_path, minus the NUL


def free_port(host: str) -> int:
    """A currently free TCP port on ``host`` (bind port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def _read_greeting(
    host: str, port: int, prefix: bytes, tls: ssl.SSLContext | None, timeout: float
) -> bytes:
    with socket.create_connection((host, port), timeout=timeout) as raw:
        sock: socket.socket = raw
        if tls is not None:
            sock = tls.wrap_socket(raw, server_hostname=host)
        try:
            data = b""
            while b"\n" not in data:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        finally:
            if sock is not raw:
                sock.close()
    if not data.startswith(prefix):
        raise ConnectionError(f"unexpected greeting {data!r}")
    return data


def wait_for_greeting(
    host: str,
    port: int,
    prefix: bytes,
    *,
    tls: ssl.SSLContext | None = None,
    timeout: float = READY_TIMEOUT,
) -> bytes:
    """Poll until a connection to host:port gets a greeting starting with ``prefix``."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    delay = 0.005
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TestBedError(
                f"{host}:{port} did not greet with {prefix!r} within {timeout} s: {last}"
            )
        try:
            return _read_greeting(host, port, prefix, tls, min(remaining, 2.0))
        except (OSError, ssl.SSLError) as exc:
            last = exc
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat_line = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ..." -- comm may contain spaces and parentheses.
        ppid = int(stat_line.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def process_tree(pid: int) -> set[int]:
    """``pid`` and all of its descendants that are alive now."""
    children = _children_map()
    tree: set[int] = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        if p in tree or not _alive(p):
            continue
        tree.add(p)
        todo.extend(children.get(p, ()))
    return tree


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _reap(pid: int) -> None:
    # Our own children (the daemonizing front ends) would stay zombies otherwise.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def terminate_tree(pids: set[int], *, timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM the given processes, wait until gone, SIGKILL whatever is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while True:
            for pid in pids:
                _reap(pid)
            left = {pid for pid in pids if _alive(pid)}
            if not left:
                return
            if time.monotonic() > deadline:
                pids = left
                break
            time.sleep(0.01)


def processes_under(root: Path) -> set[int]:
    """Live processes whose command line, cwd or root points into ``root``."""
    found = set()
    marker = str(root).rstrip("/") + "/"  # "bed/" must not match "bed2/"
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            cwd = os.readlink(f"/proc/{entry}/cwd")
            proot = os.readlink(f"/proc/{entry}/root")
        except OSError:
            continue
        if (
            marker.encode() in cmdline
            or (cwd + "/").startswith(marker)
            or (proot + "/").startswith(marker)
        ):
            found.add(int(entry))
    return {pid for pid in found if _alive(pid)}


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _make_traversable(path: Path) -> None:
    """Give "others" search (x) permission on ``path`` and its ancestors.

    Dovecot's mail processes (uid 5000), its login processes and Postfix's daemons (user
    postfix) must reach files under the root. pytest's and mkdtemp's directories are 0700.
    Only the x bit is added: nobody can list those directories.
    """
    for p in (path, *path.parents):
        mode = p.stat().st_mode
        if not mode & stat.S_IXOTH:
            p.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


class _Dovecot:
    """One Dovecot instance (the main one, or one serving a faulty certificate)."""

    def __init__(self, conf: Path, base_dir: Path, log_path: Path, stderr_path: Path) -> None:
        self.conf = conf
        self.base_dir = base_dir
        self.log_path = log_path
        self.stderr_path = stderr_path
        self.master_pid: int | None = None

    def start(self, dovecot: str) -> None:
        # A stale anvil-auth-penalty socket from an earlier run stalls every auth by 5 s.
        with contextlib.suppress(FileNotFoundError):
            (self.base_dir / "anvil-auth-penalty").unlink()
        # The daemonized master keeps stderr open: never a pipe, always a file.
        with self.stderr_path.open("ab") as err:
            proc = subprocess.run(  # noqa: S603
                [dovecot, "-c", str(self.conf)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                check=False,
                timeout=30,
            )
        if proc.returncode != 0:
            raise TestBedError(f"dovecot -c {self.conf} exited with {proc.returncode}")
        self.master_pid = _read_pid(self.base_dir / "master.pid")

    def pids(self) -> set[int]:
        pid = self.master_pid or _read_pid(self.base_dir / "master.pid")
        return process_tree(pid) if pid else set()

    def stop(self) -> None:
        terminate_tree(self.pids())
        self.master_pid = None


class MailTestBed:
    """Dovecot + Postfix on free high ports of ``host``, everything under ``root``.

    Needs root (Postfix refuses to start otherwise). Several beds may run at once in
    different roots.
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        root: Path,
        users: Sequence[TestBedUser] = DEFAULT_USERS,
        *,
        host: str = "127.0.0.1",
        oauth2_introspection_url: str | None = None,
    ) -> None:
        self.root = Path(root).absolute()
        # When set, Dovecot (and Postfix through it) also accepts XOAUTH2 and OAUTHBEARER,
        # validating each bearer token by POSTing it to this RFC 7662 introspection URL.
        self.oauth2_introspection_url = oauth2_introspection_url
        self.users: tuple[TestBedUser, ...] = tuple(users)
        self.host = host
        self.imap_port = 0
        self.imaps_port = 0
        self.submission_port = 0
        self.submissions_port = 0
        self.smtp_port = 0
        self.log_paths: list[Path] = []
        self.timings: dict[str, float] = {}

        self.cert_dir = self.root / "certs"
        self.dovecot_dir = self.root / "dovecot"
        self.dovecot_conf = self.dovecot_dir / "dovecot.conf"
        self.run_dir = self.root / "run"  # Dovecot base_dir: short, for unix socket paths
        self.mail_root = self.root / "mail"
        self.log_dir = self.root / "logs"
        self.postfix_dir = self.root / "postfix"
        self.queue_dir = self.root / "queue"
        self.postfix_data_dir = self.root / "postfix-data"
        self.lmtp_socket = self.run_dir / "lmtp"
        self.auth_socket = self.run_dir / "auth-postfix"
        self.dovecot_log = self.log_dir / "dovecot.log"
        self.postfix_log = self.log_dir / "postfix.log"

        self._ca: trustme.CA | None = None
        self._ca_pem: Path | None = None
        self._valid: CertFiles | None = None
        self._fault_certs: dict[str, CertFiles] = {}
        self._dovecot: _Dovecot | None = None
        self._faults: dict[str, tuple[_Dovecot, int, int]] = {}
        self._postfix_pids: set[int] = set()
        self._started = False
        self._programs: dict[str, str] = {}

    # ----------------------------------------------------------------- properties
    @property
    def ca(self) -> trustme.CA:
        if self._ca is None:
            raise TestBedError("the test bed has not been started")
        return self._ca

    @property
    def ca_pem(self) -> Path:
        if self._ca_pem is None:
            raise TestBedError("the test bed has not been started")
        return self._ca_pem

    @property
    def running(self) -> bool:
        return self._started

    def user(self, name: str) -> TestBedUser:
        for u in self.users:
            if name in (u.name, u.address):
                return u
        raise KeyError(name)

    def maildir(self, user: str) -> Path:
        """The Maildir root of ``user`` (login name or address); ``new/`` holds fresh mail."""
        return self.mail_root / self.user(user).name / "Maildir"

    def ssl_context(self) -> ssl.SSLContext:
        """A client SSL context that trusts the test CA (and only it)."""
        ctx = ssl.create_default_context(cafile=str(self.ca_pem))
        return ctx

    # -------------------------------------------------------------- life cycle
    def __enter__(self) -> MailTestBed:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _program(self, name: str) -> str:
        if name not in self._programs:
            path = find_program(name)
            if path is None:
                raise TestBedError(f"{name} not found; call ensure_installed() first")
            self._programs[name] = path
        return self._programs[name]

    def start(self) -> None:
        """Start Dovecot, then Postfix; return once both greet. Raises TestBedError."""
        if self._started:
            return
        if os.geteuid() != 0:
            raise TestBedError("the mail test bed must run as root (Postfix requires it)")
        if any(c.isspace() for c in str(self.root)):
            raise TestBedError(f"the test bed root must not contain whitespace: {self.root!r}")
        t0 = time.monotonic()
        self._started = True
        try:
            self._prepare()
            t1 = time.monotonic()
            self._start_dovecot()
            t2 = time.monotonic()
            self._start_postfix()
            t3 = time.monotonic()
        except BaseException as exc:
            logs = self._log_tails()
            self.stop()
            if isinstance(exc, TestBedError):
                raise TestBedError(f"{exc}\n{logs}") from exc
            raise
        self.timings.update(
            prepare=t1 - t0, dovecot_start=t2 - t1, postfix_start=t3 - t2, start=t3 - t0
        )

    def _log_tails(self) -> str:
        parts = []
        for path in self.log_paths:
            tail = _tail(path)
            if tail:
                parts.append(f"--- {path} ---\n{tail}")
        return "\n".join(parts)

    def _prepare(self) -> None:
        for d in (
            self.root,
            self.cert_dir,
            self.dovecot_dir,
            self.run_dir,
            self.log_dir,
            self.postfix_dir,
            self.queue_dir,
            self.mail_root,
        ):
            d.mkdir(parents=True, exist_ok=True)
        _make_traversable(self.root)
        for d in (self.mail_root, self.dovecot_dir, self.log_dir, self.postfix_dir):
            d.chmod(0o755)
        for sock in (self.lmtp_socket, self.auth_socket):
            if len(str(sock)) > _SUN_PATH_MAX:
                raise TestBedError(f"unix socket path too long (use a shorter root): {sock}")

        self.postfix_data_dir.mkdir(exist_ok=True)
        shutil.chown(self.postfix_data_dir, "postfix", "postfix")
        for u in self.users:
            home = self.mail_root / u.name
            home.mkdir(exist_ok=True)
            os.chown(home, templates.MAIL_UID, templates.MAIL_GID)

        self._ca, self._ca_pem, self._valid, self._fault_certs = make_certs(self.cert_dir)
        self.cert_dir.chmod(0o755)

        for attr in ("imap_port", "imaps_port", "submission_port", "submissions_port", "smtp_port"):
            setattr(self, attr, free_port(self.host))

        self.log_paths = [
            self.dovecot_log,
            self.dovecot_dir / "dovecot.stderr",
            self.postfix_log,
            self.postfix_dir / "postfix.stderr",
        ]
        for log in self.log_paths:
            log.touch()

    # ---------------------------------------------------------------- Dovecot
    def _passwd_path(self) -> Path:
        return self.dovecot_dir / "users"

    def _write_dovecot(
        self, name: str, cert: CertFiles, imap_port: int, imaps_port: int, *, main: bool
    ) -> _Dovecot:
        suffix = "" if main else f"-{name}"
        conf = self.dovecot_dir / f"dovecot{suffix}.conf"
        base_dir = self.root / f"run{suffix}"
        state_dir = self.dovecot_dir / f"state{suffix}"
        log_path = self.log_dir / f"dovecot{suffix}.log"
        for d in (base_dir, state_dir):
            d.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha1(str(self.root).encode(), usedforsecurity=False).hexdigest()[:8]
        settings = templates.DovecotSettings(
            instance=f"mailcanary-{digest}{suffix}",
            base_dir=base_dir,
            state_dir=state_dir,
            host=self.host,
            log_path=log_path,
            cert=cert.cert,
            key=cert.key,
            passwd=self._passwd_path(),
            imap_port=imap_port,
            imaps_port=imaps_port,
            main=main,
            sieve_before=self.dovecot_dir / "before.sieve",
            oauth2_conf=self._oauth2_conf_path() if self.oauth2_introspection_url else None,
        )
        conf.write_text(templates.dovecot_conf(settings))
        log_path.touch()
        if log_path not in self.log_paths:
            self.log_paths.append(log_path)
        return _Dovecot(conf, base_dir, log_path, self.dovecot_dir / f"dovecot{suffix}.stderr")

    def _oauth2_conf_path(self) -> Path:
        return self.dovecot_dir / "dovecot-oauth2.conf.ext"

    def _start_dovecot(self) -> None:
        assert self._valid is not None
        if self.oauth2_introspection_url:
            conf = self._oauth2_conf_path()
            conf.write_text(templates.oauth2_conf(self.oauth2_introspection_url))
            conf.chmod(0o644)
        passwd = self._passwd_path()
        passwd.write_text(templates.passwd_file(self.users, self.mail_root))
        passwd.chmod(0o644)
        self._dovecot = self._write_dovecot(
            "main", self._valid, self.imap_port, self.imaps_port, main=True
        )
        sieve = self.dovecot_dir / "before.sieve"
        sieve.write_text(templates.SIEVE_BEFORE)
        proc = subprocess.run(  # noqa: S603
            [self._program("sievec"), "-c", str(self.dovecot_conf), str(sieve)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise TestBedError(f"sievec failed: {proc.stdout}{proc.stderr}")
        self._dovecot.start(self._program("dovecot"))
        wait_for_greeting(self.host, self.imap_port, b"* OK")
        wait_for_greeting(self.host, self.imaps_port, b"* OK", tls=self.ssl_context())

    def tls_fault_ports(self, kind: str) -> tuple[int, int]:
        """(imaps_port, imap_starttls_port) of a Dovecot serving a certificate with ``kind``.

        ``expired``: same CA, not_after in the past; ``wrong_host``: valid only for
        wrong.example.invalid; ``self_signed``: issued by a CA that is not in ca_pem.
        Started on first use (a separate Dovecot instance sharing users and mail).
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown TLS fault {kind!r}; expected one of {FAULT_KINDS}")
        if not self._started or self._dovecot is None:
            raise TestBedError("the test bed has not been started")
        if kind not in self._faults:
            imaps, imap = free_port(self.host), free_port(self.host)
            instance = self._write_dovecot(kind, self._fault_certs[kind], imap, imaps, main=False)
            try:
                instance.start(self._program("dovecot"))
                wait_for_greeting(self.host, imap, b"* OK")
            except BaseException:
                instance.stop()
                raise
            self._faults[kind] = (instance, imaps, imap)
        _, imaps, imap = self._faults[kind]
        return imaps, imap

    def doveadm(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``doveadm -c <our config> ARGS``; raises TestBedError on failure."""
        proc = subprocess.run(  # noqa: S603
            [self._program("doveadm"), "-c", str(self.dovecot_conf), *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        if proc.returncode != 0:
            raise TestBedError(
                f"doveadm {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}"
            )
        return proc

    def create_folder(self, user: str, name: str) -> None:
        """Create a plain folder (no special-use flag) ``name`` (UTF-8) in ``user``'s mailbox."""
        self.doveadm("mailbox", "create", "-u", self.user(user).name, name)

    # ---------------------------------------------------------------- Postfix
    def _start_postfix(self) -> None:
        assert self._valid is not None
        settings = templates.PostfixSettings(
            host=self.host,
            queue_dir=self.queue_dir,
            data_dir=self.postfix_data_dir,
            log_dir=self.log_dir,
            maillog=self.postfix_log,
            vmailbox=self.postfix_dir / "vmailbox",
            transport=self.postfix_dir / "transport",
            lmtp_socket=self.lmtp_socket,
            auth_socket=self.auth_socket,
            cert=self._valid.cert,
            key=self._valid.key,
            smtp_port=self.smtp_port,
            submission_port=self.submission_port,
            submissions_port=self.submissions_port,
        )
        files = {
            "main.cf": templates.main_cf(settings),
            "master.cf": templates.master_cf(settings),
            "vmailbox": templates.vmailbox_map(self.users),
            "transport": templates.transport_map(),
        }
        # Every postfix command waits ~1.7 s while main.cf is younger than ~2 s: backdate.
        past = time.time() - 60
        for name, text in files.items():
            path = self.postfix_dir / name
            path.write_text(text)
            os.utime(path, (past, past))
        with (self.postfix_dir / "postfix.stderr").open("ab") as err:
            proc = subprocess.run(  # noqa: S603
                [self._program("postfix"), "-c", str(self.postfix_dir), "start"],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                check=False,
                timeout=60,
            )
        pid = _read_pid(self.queue_dir / "pid" / "master.pid")
        if pid:
            self._postfix_pids = {pid}
        if proc.returncode != 0:
            raise TestBedError(
                f"postfix -c {self.postfix_dir} start exited with {proc.returncode} "
                f"(try: script -qec 'postfix -c {self.postfix_dir} check' /dev/null)"
            )
        if not pid:
            raise TestBedError("postfix started but wrote no pid/master.pid")
        wait_for_greeting(self.host, self.smtp_port, b"220")
        wait_for_greeting(self.host, self.submission_port, b"220")
        wait_for_greeting(self.host, self.submissions_port, b"220", tls=self.ssl_context())

    # ------------------------------------------------------------------- stop
    def pids(self) -> set[int]:
        """Every live process this bed started (Dovecot and Postfix masters and children)."""
        pids: set[int] = set()
        for pid in self._postfix_pids:
            pids |= process_tree(pid)
        if self._dovecot is not None:
            pids |= self._dovecot.pids()
        for instance, _, _ in self._faults.values():
            pids |= instance.pids()
        return pids

    def stop(self, *, wait_reaped: float = 0.0) -> None:
        """Stop everything this bed started; idempotent; returns once all of it is dead.

        Postfix: SIGTERM to the master (what ``postfix stop`` does, without its 1 s polling
        sleeps; the master passes it on to its children), SIGKILL after 5 s.
        Dovecot: SIGTERM to each master (what ``doveadm stop`` does), SIGKILL after 5 s.

        The daemons' processes are orphans (children of PID 1) once their master is gone, so
        for a moment they can remain as zombies until PID 1 reaps them (about 1 s on these
        machines). A zombie holds no port, file or socket; ``wait_reaped`` seconds > 0 also
        waits for their /proc entries to disappear.
        """
        if not self._started:
            return
        t0 = time.monotonic()
        pids = self.pids()
        terminate_tree(pids)
        # A master may fork a child (Postfix's on-demand services) while it is being stopped;
        # such a straggler is not in the tree we saw, but it lives under our root.
        stragglers = processes_under(self.root) - {os.getpid()}
        if stragglers:
            terminate_tree(stragglers)
            pids |= stragglers
        deadline = time.monotonic() + wait_reaped
        while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
            time.sleep(0.01)
        for instance, _, _ in self._faults.values():
            instance.master_pid = None
        if self._dovecot is not None:
            self._dovecot.master_pid = None
        self._faults.clear()
        self._postfix_pids = set()
        self._started = False
        self.timings["stop"] = time.monotonic() - t0
