"""Where a request carries its credential, read in one fixed order."""

from __future__ import annotations

import base64
import dataclasses
from urllib.parse import parse_qsl

from werkzeug.http import parse_cookie

from mlflow_hokusai.pipeline import RequestInfo

# The browser session (plugins/browser): a signed key id, never the key.
SESSION_COOKIE = "hokusai_session"


@dataclasses.dataclass(frozen=True)
class Credential:
    kind: str  # "key", "bearer" (a key or a JWT: decided by its shape) or "session"
    value: str
    # Added by a browser on its own, to any request to this server, whichever
    # page made it (a session cookie, cached Basic credentials): the one kind a
    # cross-site page can make use of (see plugins/browser/csrf.py).
    ambient: bool = False


def _from_authorization(header: str) -> Credential | None:
    scheme, _, value = header.strip().partition(" ")
    scheme, value = scheme.lower(), value.strip()
    if not value:
        return None
    if scheme == "bearer":
        return Credential("bearer", value)
    if scheme == "apikey":
        return Credential("key", value)
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except ValueError:  # binascii.Error, UnicodeDecodeError, non-ASCII input
            return Credential("key", "", ambient=True)  # present but unreadable: malformed
        # The key is the password; the user name is free (MLflow sends its own).
        return Credential("key", decoded.partition(":")[2], ambient=True)
    return None


def extract(request: RequestInfo, *, allow_query: bool,
            allow_session: bool = False) -> Credential | None:
    """Authorization (Bearer, ApiKey, Basic), then X-API-Key, then ?api_key=,
    then the session cookie: an explicit credential wins over the cookie."""
    authorization = request.headers.get("authorization")
    if authorization:
        credential = _from_authorization(authorization)
        if credential is not None:
            return credential
    api_key = request.headers.get("x-api-key", "").strip()
    if api_key:
        return Credential("key", api_key)
    if allow_query and "api_key" in request.query_string:
        for name, value in parse_qsl(request.query_string, keep_blank_values=True):
            if name == "api_key" and value:
                return Credential("key", value)
    if allow_session and SESSION_COOKIE in request.headers.get("cookie", ""):
        cookie = parse_cookie(request.headers["cookie"]).get(SESSION_COOKIE)
        if cookie:
            return Credential("session", cookie, ambient=True)
    return None
