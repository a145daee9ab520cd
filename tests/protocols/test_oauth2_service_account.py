"""Google Workspace service accounts (RFC 7523 JWT bearer) against the real Dovecot and
Postfix: the test token server verifies the RS256 signature with the public key, then
Dovecot asks it whether the access token is good, as for every OAuth2 login."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from mailcanary.config import ConfigError, load_config
from mailcanary.testbed import MailTestBed, ensure_installed
from tests.helpers.oauth_server import OAuthServer
from tests.helpers.support import check_json, cli, endpoint, write_config

EMAIL = "canary@monitoring-4711.iam.gserviceaccount.com"
KEY_ID = "3f0c1d6b9a2e4c7d8e5f0a1b2c3d4e5f6a7b8c9d"


@pytest.fixture(scope="module")
def oauth_server() -> Iterator[OAuthServer]:
    with OAuthServer().running() as server:
        yield server


@pytest.fixture(scope="module")
def oauth_bed(
    tmp_path_factory: pytest.TempPathFactory, oauth_server: OAuthServer
) -> Iterator[MailTestBed]:
    ensure_installed()
    bed = MailTestBed(tmp_path_factory.mktemp("sabed"),
                      oauth2_introspection_url=oauth_server.url + "/introspect")
    bed.start()
    try:
        yield bed
    finally:
        bed.stop()


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def public_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def key_json(tmp: Path, token_uri: str, pem: str, **extra: object) -> Path:
    """A key file as Google's console downloads it."""
    doc = {"type": "service_account", "project_id": "monitoring-4711",
           "private_key_id": KEY_ID, "private_key": pem, "client_email": EMAIL,
           "client_id": "104583021938475629384", "token_uri": token_uri, **extra}
    path = tmp / "service-account.json"
    path.write_text(json.dumps(doc, indent=2))
    path.chmod(0o600)
    return path


def sa_config(tmp: Path, bed: MailTestBed, key_file: Path | str,
              subject: str = "alice@example.test") -> Path:
    oauth2 = (f'{{ provider = "google", grant = "jwt_bearer", service_account_file = '
              f'"{key_file}", subject = "{subject}" }}')
    account = "\n".join([
        "[[accounts]]", 'name = "acc"', f'address = "{subject}"', 'username = "alice"',
        'timeout = "5s"', f'ca_file = "{bed.ca_pem}"', f"oauth2 = {oauth2}",
        f"imap = {endpoint('127.0.0.1', bed.imap_port, 'starttls')}",
        f"smtp = {endpoint('127.0.0.1', bed.submission_port, 'starttls')}",
    ]) + "\n"
    return write_config(tmp, account)


async def test_service_account_signs_in_to_imap_and_smtp(
    tmp_path: Path, oauth_bed: MailTestBed, oauth_server: OAuthServer
) -> None:
    key = new_key()
    oauth_server.add_service_account(EMAIL, public_pem(key))
    pem = private_pem(key)
    cfg = sa_config(tmp_path, oauth_bed, key_json(tmp_path, oauth_server.url + "/token", pem))
    before = len(oauth_server.verified_assertions())
    code, rows, output = await check_json(cfg, "--transcript")
    assert code == 0, output
    assert sorted((r["probe"], r["ok"]) for r in rows) == [("imap", True), ("smtp", True)], \
        output
    claims = oauth_server.verified_assertions()[before:]
    assert len(claims) == 1  # one token for both probes
    got = claims[0]
    assert (got["iss"], got["sub"], got["aud"], got["scope"]) == (
        EMAIL, "alice@example.test", oauth_server.url + "/token", "https://mail.google.com/")
    assert got["exp"] - got["iat"] == 3600
    request = oauth_server.state.token_requests[-1]
    assert request["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    assert "client_id" not in request and "client_secret" not in request
    body = pem.split("-----")[2].replace("\n", "")
    for secret in (request["assertion"], request["assertion"].split(".")[2], body[40:80]):
        assert secret not in output
    assert "grant_type=jwt_bearer" in output


async def test_a_key_the_server_does_not_know_is_an_oauth_error(
    tmp_path: Path, oauth_bed: MailTestBed, oauth_server: OAuthServer
) -> None:
    oauth_server.add_service_account(EMAIL, public_pem(new_key()))
    cfg = sa_config(tmp_path, oauth_bed,
                    key_json(tmp_path, oauth_server.url + "/token", private_pem(new_key())))
    code, rows, output = await check_json(cfg)
    assert code == 1, output
    assert {(r["class"], r["reason"], r["phase"]) for r in rows} == {
        ("auth", "oauth_token_error", "token")}, output
    assert "Invalid JWT Signature" in rows[0]["detail"]


@pytest.mark.parametrize(("content", "why"), [
    (None, "no such file"),
    ("{not json", "not valid JSON"),
    ('["a list"]', "not a JSON object"),
    ({"private_key": None}, "no private_key"),
    ({"client_email": ""}, "no client_email"),
    ({"private_key": "-----BEGIN PRIVATE KEY-----\nTUlJRXZRSUJBREFOQmdrcWhraUc5dzBC"
                     "\n-----END PRIVATE KEY-----\n"}, "not an unencrypted PEM private key"),
    ({"private_key": "EC"}, "not an RSA key"),
    ({"token_uri": "http://oauth2.example.com/token"}, "must be an https:// URL"),
    ({"type": "authorized_user"}, 'type is not "service_account"'),
])
async def test_a_bad_key_file_is_a_config_error_naming_it(
    tmp_path: Path, oauth_bed: MailTestBed, oauth_server: OAuthServer,
    content: str | dict[str, object] | None, why: str,
) -> None:
    pem = private_pem(new_key())
    path = key_json(tmp_path, oauth_server.url + "/token", pem)
    if content is None:
        path.unlink()
    elif isinstance(content, str):
        path.write_text(content)
    else:
        if content.get("private_key") == "EC":
            content = {"private_key": private_pem(ec.generate_private_key(ec.SECP256R1()))}
        doc = json.loads(path.read_text())
        path.write_text(json.dumps({**doc, **content}))
    requests = len(oauth_server.state.token_requests)
    code, rows, output = await check_json(sa_config(tmp_path, oauth_bed, path))
    assert code == 1, output
    assert {(r["class"], r["reason"]) for r in rows} == {("config", "config_error")}, output
    assert f"oauth2.service_account_file {path}" in rows[0]["detail"], rows[0]["detail"]
    assert why in rows[0]["detail"], rows[0]["detail"]
    assert pem.split("-----")[2].replace("\n", "")[40:80] not in output
    assert "PRIVATE KEY" not in output
    assert len(oauth_server.state.token_requests) == requests  # nothing was sent


@pytest.mark.parametrize(("oauth2", "says"), [
    ('grant = "jwt_bearer", subject = "a@example.test"', "needs service_account_file"),
    ('grant = "jwt_bearer", service_account_file = "k.json"', "and subject"),
    ('grant = "jwt_bearer", service_account_file = "k.json", subject = "a@example.test", '
     'client_id = "x"', "takes no client_id"),
    ('service_account_file = "k.json", subject = "a@example.test", client_id = "x", '
     'refresh_token_env = "T"', 'go with grant = "jwt_bearer"'),
    ('grant = "jwt_bearer", service_account_file = "k.json", subject = "not-an-address"',
     "subject"),
])
def test_jwt_bearer_config_errors_name_the_key(tmp_path: Path, oauth2: str, says: str) -> None:
    path = write_config(tmp_path, "\n".join([
        "[[accounts]]", 'name = "acc"', 'address = "a@example.test"',
        f'oauth2 = {{ provider = "google", {oauth2} }}',
        'imap = { host = "imap.gmail.com", port = 993, security = "tls" }',
    ]) + "\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    report = caught.value.report()
    assert "accounts[0].oauth2" in report and says in report, report


async def test_validate_reads_the_key_file(tmp_path: Path, oauth_bed: MailTestBed) -> None:
    """`validate` catches what the token request would: exit 2 naming the key path, never
    showing the key."""
    pem = private_pem(new_key())
    path = key_json(tmp_path, "https://oauth2.googleapis.com/token", pem)
    cfg = sa_config(tmp_path, oauth_bed, path)
    code, out, err = await cli("validate", "--config", str(cfg))
    assert code == 0, out + err
    path.write_text(json.dumps({**json.loads(path.read_text()), "private_key": "garbage"}))
    code, out, err = await cli("validate", "--config", str(cfg))
    assert code == 2, out + err
    assert "accounts[0].oauth2.service_account_file" in out + err
    assert "not an unencrypted PEM private key" in out + err
    assert "garbage" not in out + err and pem[40:80] not in out + err


def test_a_new_key_is_a_new_secret_for_the_auth_pause(tmp_path: Path) -> None:
    """The lockout pause ends when the secret changes: for a service account, its key."""
    from mailcanary.daemon.backoff import _material  # noqa: PLC0415

    path = key_json(tmp_path, "https://oauth2.googleapis.com/token", private_pem(new_key()))
    account = "\n".join([
        "[[accounts]]", 'name = "acc"', 'address = "a@example.test"',
        f'oauth2 = {{ provider = "google", grant = "jwt_bearer", service_account_file = '
        f'"{path}", subject = "a@example.test" }}',
        'imap = { host = "imap.gmail.com", port = 993, security = "tls" }',
    ]) + "\n"
    config = load_config(write_config(tmp_path, account))

    def material() -> str:
        return _material(config, "imap", "acc", lambda c, k, t: list(c.accounts))

    before = material()
    assert material() == before
    key_json(tmp_path, "https://oauth2.googleapis.com/token", private_pem(new_key()))
    assert material() != before
