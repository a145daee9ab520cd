"""A small, real OAuth2 authorization server for the tests, in a thread.

It issues and introspects tokens, so the test bed's Dovecot (oauth2 passdb, introspection
mode post) accepts or refuses them for real: token endpoint (refresh_token,
client_credentials, authorization_code with PKCE, device_code grants), /introspect
(RFC 7662), /authorize (answers as a consenting user would: 302 to the redirect URI) and
/devicecode (RFC 8628). Knobs per client decide expiry, rotation, delay and bad replies.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


@dataclass
class Client:
    secret: str | None
    expires_in: int = 3600
    rotate: bool = False  # issue a new refresh token on every refresh, revoke the old one
    delay: float = 0.0  # seconds before the token endpoint answers
    non_json: bool = False  # answer the token endpoint with an HTML page
    user: str = "alice"  # whose mailbox a client_credentials token opens


@dataclass
class _Access:
    user: str
    expires_at: float
    active: bool = True


@dataclass
class _Device:
    client_id: str
    scope: str
    user: str | None = None  # set when a person approved the user code


@dataclass
class State:
    clients: dict[str, Client] = field(default_factory=dict)
    refresh: dict[str, tuple[str, str]] = field(default_factory=dict)  # token -> (client, user)
    access: dict[str, _Access] = field(default_factory=dict)
    codes: dict[str, tuple[str, str, str, str]] = field(default_factory=dict)
    devices: dict[str, _Device] = field(default_factory=dict)  # device_code -> grant
    user_codes: dict[str, str] = field(default_factory=dict)  # user_code -> device_code
    token_requests: list[dict[str, str]] = field(default_factory=list)
    service_accounts: dict[str, bytes] = field(default_factory=dict)  # email -> public PEM
    assertions: list[dict[str, Any]] = field(default_factory=list)  # verified JWT claims
    token_url: str = ""  # the audience an assertion must name
    introspections: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class OAuthServer:
    """Start with `running()`; `url` is its base (http://127.0.0.1:PORT)."""

    def __init__(self) -> None:
        self.state = State()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.state))
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        self.state.token_url = self.url + "/token"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @contextmanager
    def running(self) -> Iterator[OAuthServer]:
        self.thread.start()
        try:
            yield self
        finally:
            self.httpd.shutdown()
            self.httpd.server_close()

    # ------------------------------------------------------------ test controls
    def add_client(self, client_id: str, secret: str | None = None, **knobs: Any) -> None:
        with self.state.lock:
            self.state.clients[client_id] = Client(secret, **knobs)

    def add_service_account(self, client_email: str, public_key_pem: bytes) -> None:
        """Domain-wide delegation: assertions signed by this key may act for any user."""
        with self.state.lock:
            self.state.service_accounts[client_email] = public_key_pem

    def verified_assertions(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return list(self.state.assertions)

    def grant(self, client_id: str, user: str) -> str:
        """A refresh token for `user`, as a completed consent would give."""
        token = "rt-" + secrets.token_urlsafe(24)
        with self.state.lock:
            self.state.refresh[token] = (client_id, user)
        return token

    def revoke_access_tokens(self) -> None:
        with self.state.lock:
            for access in self.state.access.values():
                access.active = False

    def approve_device(self, user_code: str, user: str) -> None:
        with self.state.lock:
            self.state.devices[self.state.user_codes[user_code]].user = user

    def token_requests(self, client_id: str) -> list[dict[str, str]]:
        with self.state.lock:
            return [r for r in self.state.token_requests if r.get("client_id") == client_id]

    def issued_access_tokens(self) -> list[str]:
        with self.state.lock:
            return list(self.state.access)

    def valid_refresh_tokens(self) -> list[str]:
        with self.state.lock:
            return list(self.state.refresh)


JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def verify_assertion(assertion: str, keys: dict[str, bytes], audience: str) -> dict[str, Any] | str:
    """The verified claims, or why the assertion is refused (Google's words where known)."""
    try:
        head_b64, claims_b64, sig_b64 = assertion.split(".")
        header = json.loads(_unb64(head_b64))
        claims = json.loads(_unb64(claims_b64))
    except ValueError:
        return "Invalid JWT: not a compact JWS"
    if header.get("alg") != "RS256":
        return "Invalid JWT: alg must be RS256"
    pem = keys.get(claims.get("iss", ""))
    if pem is None:
        return "Invalid JWT: unknown issuer"
    public = serialization.load_pem_public_key(pem)
    assert isinstance(public, rsa.RSAPublicKey)
    try:
        public.verify(_unb64(sig_b64), f"{head_b64}.{claims_b64}".encode(),
                      padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return "Invalid JWT Signature."
    now = time.time()
    if claims.get("aud") != audience:
        return f"Invalid JWT: aud must be {audience}"
    if not (claims["iat"] - 60 <= now < claims["exp"] and claims["exp"] - claims["iat"] <= 3600):
        return "Invalid JWT: Token must be a short-lived token (60 minutes) and in a " \
            "reasonable timeframe."
    if not claims.get("sub") or not claims.get("scope"):
        return "Invalid JWT: sub and scope are required"
    return dict(claims)


def _handler(state: State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, status: int, body: dict[str, Any] | str, **headers: str) -> None:
            raw = (json.dumps(body) if isinstance(body, dict) else body).encode()
            self.send_response(status)
            ctype = "application/json" if isinstance(body, dict) else "text/html"
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(raw)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(raw)

        def _form(self) -> dict[str, str]:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode()
            return {k: v[0] for k, v in parse_qs(body).items()}

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path != "/authorize":
                self._reply(404, {"error": "not_found"})
                return
            q = {k: v[0] for k, v in parse_qs(parts.query).items()}
            with state.lock:
                known = q.get("client_id") in state.clients
            if not known or q.get("code_challenge_method") != "S256":
                self._reply(400, "<p>bad authorization request</p>")
                return
            code = "code-" + secrets.token_urlsafe(12)
            with state.lock:
                state.codes[code] = (q["client_id"], q["redirect_uri"], q["code_challenge"],
                                     (q.get("login_hint") or "alice").split("@")[0])
            location = q["redirect_uri"] + "?" + urlencode({"code": code, "state": q["state"]})
            self._reply(302, "<p>redirecting</p>", Location=location)

        def do_POST(self) -> None:
            form = self._form()
            path = urlsplit(self.path).path
            if path == "/introspect":
                self._introspect(form)
            elif path == "/devicecode":
                self._devicecode(form)
            elif path == "/token":
                self._token(form)
            else:
                self._reply(404, {"error": "not_found"})

        def _introspect(self, form: dict[str, str]) -> None:
            with state.lock:
                state.introspections += 1
                access = state.access.get(form.get("token", ""))
                active = access is not None and access.active and time.time() < access.expires_at
            if access is None or not active:
                self._reply(200, {"active": False})
            else:
                self._reply(200, {"active": True, "username": access.user})

        def _devicecode(self, form: dict[str, str]) -> None:
            with state.lock:
                if form.get("client_id") not in state.clients:
                    self._reply(400, {"error": "invalid_client"})
                    return
                device = "dev-" + secrets.token_urlsafe(12)
                user_code = secrets.token_hex(4).upper()
                state.devices[device] = _Device(form["client_id"], form.get("scope", ""))
                state.user_codes[user_code] = device
            self._reply(200, {
                "device_code": device, "user_code": user_code,
                "verification_uri": "https://microsoft.com/devicelogin",
                "expires_in": 900, "interval": 1,
                "message": f"To sign in, enter the code {user_code}.",
            })

        def _token(self, form: dict[str, str]) -> None:
            with state.lock:
                state.token_requests.append(dict(form))
                client = state.clients.get(form.get("client_id", ""))
            if form.get("grant_type") == JWT_BEARER:
                verdict = self._jwt_bearer(form.get("assertion", ""))
                self._reply(400 if "error" in verdict else 200, verdict)
                return
            if client is None or (client.secret is not None
                                  and form.get("client_secret") != client.secret):
                self._reply(401, {"error": "invalid_client",
                                  "error_description": "Client authentication failed."})
                return
            if client.delay:
                time.sleep(client.delay)
            if client.non_json:
                self._reply(502, "<html><body>Bad Gateway</body></html>")
                return
            grant = form.get("grant_type")
            with state.lock:
                answer = self._grant(grant, form, client)
            self._reply(400 if "error" in answer else 200, answer)

        def _jwt_bearer(self, assertion: str) -> dict[str, Any]:
            """RFC 7523 as Google checks it: RS256 over header.claims with the registered
            key of `iss`, aud = this endpoint, a lifetime of at most an hour."""
            claims = verify_assertion(assertion, state.service_accounts, state.token_url)
            if isinstance(claims, str):
                return {"error": "invalid_grant", "error_description": claims}
            access = "at-" + secrets.token_urlsafe(24)
            with state.lock:
                state.assertions.append(claims)
                state.access[access] = _Access(claims["sub"].split("@")[0], time.time() + 3600)
            return {"access_token": access, "token_type": "Bearer", "expires_in": 3600}

        def _grant(self, grant: str | None, form: dict[str, str], client: Client) -> dict[str, Any]:
            client_id = form["client_id"]
            refresh: str | None = None
            if grant == "refresh_token":
                holder = state.refresh.get(form.get("refresh_token", ""))
                if holder is None or holder[0] != client_id:
                    return {"error": "invalid_grant",
                            "error_description": "Token has been expired or revoked."}
                user = holder[1]
                if client.rotate:
                    del state.refresh[form["refresh_token"]]
                    refresh = "rt-" + secrets.token_urlsafe(24)
                    state.refresh[refresh] = (client_id, user)
            elif grant == "client_credentials":
                user = client.user
            elif grant == "authorization_code":
                entry = state.codes.pop(form.get("code", ""), None)
                verifier = form.get("code_verifier", "")
                challenge = base64.urlsafe_b64encode(
                    hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
                if entry is None or entry[1] != form.get("redirect_uri") or entry[2] != challenge:
                    return {"error": "invalid_grant", "error_description": "bad code or PKCE"}
                user = entry[3]
                refresh = "rt-" + secrets.token_urlsafe(24)
                state.refresh[refresh] = (client_id, user)
            elif grant == "urn:ietf:params:oauth:grant-type:device_code":
                device = state.devices.get(form.get("device_code", ""))
                if device is None:
                    return {"error": "expired_token", "error_description": "unknown device code"}
                if device.user is None:
                    return {"error": "authorization_pending",
                            "error_description": "The user has not yet signed in."}
                user = device.user
                del state.devices[form["device_code"]]
                refresh = "rt-" + secrets.token_urlsafe(24)
                state.refresh[refresh] = (client_id, user)
            else:
                return {"error": "unsupported_grant_type"}
            access = "at-" + secrets.token_urlsafe(24)
            state.access[access] = _Access(user, time.time() + client.expires_in)
            out: dict[str, Any] = {"access_token": access, "token_type": "Bearer",
                                   "expires_in": client.expires_in}
            if refresh is not None:
                out["refresh_token"] = refresh
            return out

    return Handler
