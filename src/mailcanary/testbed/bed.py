"""The real mail test bed: Dovecot (IMAP, LMTP, Sieve) and Postfix under one directory."""

from __future__ import annotations

import hashlib
import os
import shutil
import ssl
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import trustme

from mailcanary.testbed import templates
from mailcanary.testbed.admin import DoveadmMixin
from mailcanary.testbed.certs import FAULT_KINDS, CertFiles, make_certs
from mailcanary.testbed.dovecot import DovecotInstance
from mailcanary.testbed.errors import TestBedError
from mailcanary.testbed.install import find_program
from mailcanary.testbed.network import free_port, wait_for_greeting
from mailcanary.testbed.pop3 import PRIVATE_HOST
from mailcanary.testbed.processes import (
    make_traversable,
    process_tree,
    processes_under,
    read_pid,
    tail,
    terminate_tree,
)
from mailcanary.testbed.users import DEFAULT_USERS, TestBedUser

_SUN_PATH_MAX = 107  # sockaddr_un.sun_path, minus the NUL


def short_run_dir(root: Path) -> Path:
    """A short directory for Dovecot's base_dir, named after ``root``.

    Unix socket paths are limited to 107 bytes, and a root deep in pytest's (or xdist's)
    temp tree leaves too few for Dovecot's own socket names (token-login/imap-urlauth).
    """
    digest = hashlib.sha1(str(root).encode(), usedforsecurity=False).hexdigest()[:10]
    return Path(tempfile.gettempdir()) / f"mcbed-{digest}"


class MailTestBed(DoveadmMixin):
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
        self.pop3_port = 0  # STLS
        self.pop3s_port = 0  # implicit TLS
        self.pop3_private_port = 0  # on PRIVATE_HOST: plaintext login refused before STLS
        self.log_paths: list[Path] = []
        self.timings: dict[str, float] = {}

        self.cert_dir = self.root / "certs"
        self.dovecot_dir = self.root / "dovecot"
        self.dovecot_conf = self.dovecot_dir / "dovecot.conf"
        self.run_dir = short_run_dir(self.root)  # Dovecot base_dir: holds unix sockets
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
        self._dovecot: DovecotInstance | None = None
        self._faults: dict[str, tuple[DovecotInstance, int, int]] = {}
        self._fault_pop3: dict[str, tuple[int, int]] = {}
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
            last = tail(path)
            if last:
                parts.append(f"--- {path} ---\n{last}")
        return "\n".join(parts)

    def _prepare(self) -> None:
        for d in (self.root, self.cert_dir, self.dovecot_dir, self.run_dir, self.log_dir,
                  self.postfix_dir, self.queue_dir, self.mail_root):
            d.mkdir(parents=True, exist_ok=True)
        make_traversable(self.root)
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

        self._ca, self._ca_pem, self._valid, self._fault_certs = make_certs(
            self.cert_dir, self.host, PRIVATE_HOST
        )
        self.cert_dir.chmod(0o755)
        self._assign_ports()

        self.log_paths = [
            self.dovecot_log,
            self.dovecot_dir / "dovecot.stderr",
            self.postfix_log,
            self.postfix_dir / "postfix.stderr",
        ]
        for log in self.log_paths:
            log.touch()

    def _assign_ports(self) -> None:
        """Free high ports (a subclass may fix them: testbed/standard_ports.py)."""
        for attr in ("imap_port", "imaps_port", "submission_port", "submissions_port",
                     "smtp_port", "pop3_port", "pop3s_port"):
            setattr(self, attr, free_port(self.host))
        self.pop3_private_port = free_port(PRIVATE_HOST)

    # ---------------------------------------------------------------- Dovecot
    def _passwd_path(self) -> Path:
        return self.dovecot_dir / "users"

    def _write_dovecot(
        self, name: str, cert: CertFiles, imap_port: int, imaps_port: int, *, main: bool,
        pop3: tuple[int, int, int] = (0, 0, 0),
    ) -> DovecotInstance:
        suffix = "" if main else f"-{name}"
        conf = self.dovecot_dir / f"dovecot{suffix}.conf"
        base_dir = Path(f"{self.run_dir}{suffix}")
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
            pop3_port=pop3[0], pop3s_port=pop3[1], pop3_private_port=pop3[2],
        )
        conf.write_text(templates.dovecot_conf(settings))
        log_path.touch()
        if log_path not in self.log_paths:
            self.log_paths.append(log_path)
        stderr = self.dovecot_dir / f"dovecot{suffix}.stderr"
        return DovecotInstance(conf, base_dir, log_path, stderr)

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
            "main", self._valid, self.imap_port, self.imaps_port, main=True,
            pop3=(self.pop3_port, self.pop3s_port, self.pop3_private_port),
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
        wait_for_greeting(self.host, self.pop3s_port, b"+OK", tls=self.ssl_context())

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
            pop3s, pop3 = free_port(self.host), free_port(self.host)
            instance = self._write_dovecot(kind, self._fault_certs[kind], imap, imaps,
                                           main=False, pop3=(pop3, pop3s, 0))
            try:
                instance.start(self._program("dovecot"))
                wait_for_greeting(self.host, imap, b"* OK")
            except BaseException:
                instance.stop()
                raise
            self._faults[kind] = (instance, imaps, imap)
            self._fault_pop3[kind] = (pop3s, pop3)
        _, imaps, imap = self._faults[kind]
        return imaps, imap

    def pop3_fault_ports(self, kind: str) -> tuple[int, int]:
        """(pop3s_port, pop3_stls_port) of the Dovecot serving a certificate with ``kind``."""
        self.tls_fault_ports(kind)
        return self._fault_pop3[kind]

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
        files = self._postfix_files(settings)
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
        pid = read_pid(self.queue_dir / "pid" / "master.pid")
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

    def _postfix_files(self, s: templates.PostfixSettings) -> dict[str, str]:
        """main.cf, master.cf, the maps (testbed/deliverability.py adds to them)."""
        return {"main.cf": templates.main_cf(s), "master.cf": templates.master_cf(s),
                "vmailbox": templates.vmailbox_map(self.users),
                "transport": templates.transport_map()}

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
        for base_dir in self.run_dir.parent.glob(self.run_dir.name + "*"):
            stragglers |= processes_under(base_dir) - {os.getpid()}
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
        self._fault_pop3.clear()
        self._postfix_pids = set()
        for base_dir in self.run_dir.parent.glob(self.run_dir.name + "*"):
            shutil.rmtree(base_dir, ignore_errors=True)  # only sockets and pid files
        self._started = False
        self.timings["stop"] = time.monotonic() - t0
