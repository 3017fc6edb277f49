"""Where a request carries its credential, read in one fixed order."""

from __future__ import annotations

import base64
import binascii
import dataclasses
from urllib.parse import parse_qsl


@dataclasses.dataclass(frozen=True)
class RequestInfo:
    """The parts of an HTTP request the gate needs, built from ASGI or WSGI."""

    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    query_string: str
    client: str | None

    @classmethod
    def from_asgi(cls, scope) -> "RequestInfo":
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        client = scope.get("client")
        return cls(scope.get("method", "GET").upper(), scope["path"], headers,
                   scope.get("query_string", b"").decode("latin-1"), client[0] if client else None)

    @classmethod
    def from_wsgi(cls, environ) -> "RequestInfo":
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items()
                   if k.startswith("HTTP_")}
        for name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if name in environ:
                headers[name.replace("_", "-").lower()] = environ[name]
        # PEP 3333 hands PATH_INFO over as latin-1 decoded bytes; re-read as UTF-8
        # so the gate and Flask's router see the same path.
        path = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace")
        return cls(environ["REQUEST_METHOD"].upper(), path, headers,
                   environ.get("QUERY_STRING", ""), environ.get("REMOTE_ADDR"))


@dataclasses.dataclass(frozen=True)
class Credential:
    kind: str  # "key" or "bearer" (a key or a JWT: decided by its shape)
    value: str
    source: str  # which carrier it came from, for logs


def _from_authorization(header: str) -> Credential | None:
    scheme, _, value = header.strip().partition(" ")
    scheme, value = scheme.lower(), value.strip()
    if not value:
        return None
    if scheme == "bearer":
        return Credential("bearer", value, "bearer")
    if scheme == "apikey":
        return Credential("key", value, "apikey")
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return Credential("key", "", "basic")  # present but unreadable: malformed
        # The key is the password; the user name is free (MLflow sends its own).
        return Credential("key", decoded.partition(":")[2], "basic")
    return None


def extract(request: RequestInfo, *, allow_query: bool) -> Credential | None:
    """Authorization (Bearer, ApiKey, Basic), then X-API-Key, then ?api_key=."""
    authorization = request.headers.get("authorization")
    if authorization:
        credential = _from_authorization(authorization)
        if credential is not None:
            return credential
    api_key = request.headers.get("x-api-key", "").strip()
    if api_key:
        return Credential("key", api_key, "x-api-key")
    if allow_query and "api_key" in request.query_string:
        for name, value in parse_qsl(request.query_string, keep_blank_values=True):
            if name == "api_key" and value:
                return Credential("key", value, "query")
    return None
