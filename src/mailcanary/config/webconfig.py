"""`[daemon] web_config_file`: the Prometheus exporter-toolkit web configuration (web.yml).

The same YAML keys as node_exporter's and blackbox_exporter's ``--web.config.file``, so an
admin reuses the file they already have: ``tls_server_config`` (``cert_file``,
``key_file``, ``client_ca_file``, ``client_auth_type``, ``min_version``, ``max_version``)
serves HTTPS, ``basic_auth_users`` (``name: bcrypt hash``) puts a password in front of
every endpoint. Relative paths are relative to the web.yml's folder, as in the toolkit.
Keys the toolkit has and we do not implement are errors, never silently ignored: an admin
who set ``cipher_suites`` must not believe it applies.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mailcanary.config.loading import ConfigError
from mailcanary.config.models import Config

_AUTH_TYPES = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_UNVERIFIED = ("RequestClientCert", "RequireAnyClientCert")
_VERSIONS = {"TLS10": ssl.TLSVersion.TLSv1, "TLS11": ssl.TLSVersion.TLSv1_1,
             "TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
_TLS_KEYS = {"cert_file", "key_file", "client_ca_file", "client_auth_type", "min_version",
             "max_version"}
_TLS_UNSUPPORTED = {"cert", "key", "cipher_suites", "curve_preferences",
                    "prefer_server_cipher_suites", "client_allowed_sans"}
_BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")


@dataclass(frozen=True)
class WebConfig:
    """What the web server needs: a server TLS context and the basic-auth users."""

    source: str = ""
    tls: ssl.SSLContext | None = None
    users: dict[str, bytes] = field(default_factory=dict)  # name -> bcrypt hash


def web_config_of(config: Config) -> WebConfig:
    """The web.yml `[daemon] web_config_file` names, read now (start-up, reload)."""
    path = config.daemon.web_config_file
    return WebConfig() if path is None else load_web_config(path)


def load_web_config(path: Path) -> WebConfig:
    """Read and check a web.yml; every problem names its key path (ConfigError)."""
    import yaml  # noqa: PLC0415  # only when a web.yml is configured: start-up time

    source = str(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(source, [f"cannot read the file: {exc.strerror or exc}"]) from None
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(source, [f"not valid YAML: {exc}"]) from None
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ConfigError(source, ["(top level): expected a mapping of keys"])
    problems: list[str] = []
    for key in raw:
        if key not in ("tls_server_config", "basic_auth_users", "http_server_config"):
            problems.append(f"{key}: unknown key")
    tls = _tls(raw.get("tls_server_config"), path.parent, problems)
    users = _users(raw.get("basic_auth_users"), problems)
    _http(raw.get("http_server_config"), problems)
    if problems:
        raise ConfigError(source, problems)
    return WebConfig(source=source, tls=tls, users=users)


def _mapping(value: Any, key: str, problems: list[str]) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        problems.append(f"{key}: expected a mapping")
        return None
    return value


def _http(value: Any, problems: list[str]) -> None:
    section = _mapping(value, "http_server_config", problems) or {}
    for key, item in section.items():
        if key == "http2":  # we speak HTTP/1.1 only; the toolkit's switch is harmless
            if not isinstance(item, bool):
                problems.append("http_server_config.http2: expected true or false")
        else:
            problems.append(f"http_server_config.{key}: not supported by mailcanary")


def _users(value: Any, problems: list[str]) -> dict[str, bytes]:
    section = _mapping(value, "basic_auth_users", problems) or {}
    users: dict[str, bytes] = {}
    for name, hashed in section.items():
        where = f"basic_auth_users.{name}"
        if not isinstance(name, str) or not name or ":" in name:
            problems.append(f"{where}: a user name is a non-empty string without ':'")
        elif not isinstance(hashed, str) or not hashed.startswith(_BCRYPT_PREFIXES) \
                or len(hashed) != 60:
            # Never echo the value: it is a hash of a password, or a pasted password.
            problems.append(f"{where}: expected a bcrypt hash ($2y$..., 60 characters), "
                            "e.g. from `htpasswd -nBC 10 \"\" | tr -d ':\\n'`")
        else:
            users[name] = hashed.encode()
    return users


def _tls(value: Any, folder: Path, problems: list[str]) -> ssl.SSLContext | None:
    section = _mapping(value, "tls_server_config", problems)
    if section is None:
        return None
    before = len(problems)
    for key in section:
        if key in _TLS_UNSUPPORTED:
            problems.append(f"tls_server_config.{key}: not supported by mailcanary")
        elif key not in _TLS_KEYS:
            problems.append(f"tls_server_config.{key}: unknown key")
    files = {}
    for key in ("cert_file", "key_file", "client_ca_file"):
        item = section.get(key)
        if item is None or item == "":
            if key != "client_ca_file":
                problems.append(f"tls_server_config.{key}: required key is missing")
        elif not isinstance(item, str):
            problems.append(f"tls_server_config.{key}: expected a file name")
        else:
            files[key] = folder / item
    verify = _client_auth(section, "client_ca_file" in files, problems)
    versions = _versions(section, problems)
    if len(problems) > before:
        return None
    return _context(files, verify, versions, problems)


def _client_auth(section: dict[str, Any], has_ca: bool, problems: list[str]) -> ssl.VerifyMode:
    kind = section.get("client_auth_type") or ""
    if not kind:  # the toolkit's default: a CA file given means certificates are required
        return ssl.CERT_REQUIRED if has_ca else ssl.CERT_NONE
    if kind in _UNVERIFIED:
        problems.append(f"tls_server_config.client_auth_type: {kind} (a certificate that is "
                        "not verified) is not supported; use RequireAndVerifyClientCert or "
                        "VerifyClientCertIfGiven with client_ca_file")
        return ssl.CERT_NONE
    if kind not in _AUTH_TYPES:
        problems.append(f"tls_server_config.client_auth_type: unknown value {kind!r} "
                        f"(one of {', '.join([*_AUTH_TYPES, *_UNVERIFIED])})")
        return ssl.CERT_NONE
    mode = _AUTH_TYPES[kind]
    if mode != ssl.CERT_NONE and not has_ca:
        problems.append(f"tls_server_config.client_ca_file: required with client_auth_type "
                        f"{kind}")
    return mode


def _versions(section: dict[str, Any], problems: list[str]) -> list[ssl.TLSVersion | None]:
    out: list[ssl.TLSVersion | None] = []
    for key in ("min_version", "max_version"):
        item = section.get(key)
        if item is not None and item not in _VERSIONS:
            problems.append(f"tls_server_config.{key}: one of {', '.join(_VERSIONS)}")
            item = None
        out.append(None if item is None else _VERSIONS[item])
    return out


def _context(files: dict[str, Path], verify: ssl.VerifyMode,
             versions: list[ssl.TLSVersion | None], problems: list[str]) -> ssl.SSLContext | None:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = versions[0] or ssl.TLSVersion.TLSv1_2  # the toolkit's default
    if versions[1] is not None:
        ctx.maximum_version = versions[1]
    for key in ("cert_file", "key_file", "client_ca_file"):
        if key in files and not files[key].is_file():
            problems.append(f"tls_server_config.{key}: no such file: {files[key]}")
    if problems:
        return None
    try:
        ctx.load_cert_chain(files["cert_file"], files["key_file"])
    except (OSError, ssl.SSLError) as exc:
        problems.append(f"tls_server_config.cert_file: cannot use the certificate and key: "
                        f"{getattr(exc, 'reason', None) or exc}")
        return None
    if "client_ca_file" in files:
        try:
            ctx.load_verify_locations(cafile=files["client_ca_file"])
        except (OSError, ssl.SSLError) as exc:
            problems.append(f"tls_server_config.client_ca_file: cannot load: "
                            f"{getattr(exc, 'reason', None) or exc}")
            return None
    ctx.verify_mode = verify
    return ctx
