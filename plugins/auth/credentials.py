"""Where a request carries its credential, read in one fixed order."""

from __future__ import annotations

import base64
import dataclasses
from urllib.parse import parse_qsl

from mlflow_hokusai.pipeline import RequestInfo


@dataclasses.dataclass(frozen=True)
class Credential:
    kind: str  # "key" or "bearer" (a key or a JWT: decided by its shape)
    value: str


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
            return Credential("key", "")  # present but unreadable: malformed
        # The key is the password; the user name is free (MLflow sends its own).
        return Credential("key", decoded.partition(":")[2])
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
        return Credential("key", api_key)
    if allow_query and "api_key" in request.query_string:
        for name, value in parse_qsl(request.query_string, keep_blank_values=True):
            if name == "api_key" and value:
                return Credential("key", value)
    return None
