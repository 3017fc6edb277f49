"""The session cookie: a key id signed with itsdangerous, never the key itself.

The signature says the server issued it and when; the key it names is
re-checked by the gate on every request (cached as briefly as a key), so
revoking, expiring or rotating away the key ends every session made with it.
"""

from __future__ import annotations

import os

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from mlflow_hokusai.errors import AuthenticationFailed, ConfigurationError
from mlflow_hokusai.plugins.auth.credentials import SESSION_COOKIE

MLFLOW_SECRET = "MLFLOW_FLASK_SERVER_SECRET_KEY"


def session_secret(settings) -> str:
    secret = settings.session_secret or os.environ.get(MLFLOW_SECRET, "")
    if not secret:
        raise ConfigurationError(
            "Browser sessions are on (HOKUSAI_SESSIONS_ENABLED) but no secret signs them: "
            f"set HOKUSAI_SESSION_SECRET (or {MLFLOW_SECRET}) to the same random value on "
            "every server, or turn sessions off")
    return secret


class Sessions:
    def __init__(self, secret: str, hours: float, same_site: str):
        self._serializer = URLSafeTimedSerializer(secret, salt="hokusai-session")
        self.max_age = int(hours * 3600)
        self.same_site = same_site.capitalize()

    def issue(self, key_id: str) -> str:
        return self._serializer.dumps({"k": key_id})

    def key_id(self, cookie: str) -> str:
        """The key id a cookie names, or AuthenticationFailed."""
        try:
            payload = self._serializer.loads(cookie, max_age=self.max_age)
        except SignatureExpired:
            raise AuthenticationFailed("expired") from None
        except BadSignature:
            raise AuthenticationFailed("invalid") from None
        key_id = payload.get("k") if isinstance(payload, dict) else None
        if not isinstance(key_id, str):
            raise AuthenticationFailed("invalid")
        return key_id

    def set_cookie(self, response, key_id: str, *, secure: bool) -> None:
        response.set_cookie(SESSION_COOKIE, self.issue(key_id), max_age=self.max_age, path="/",
                            httponly=True, secure=secure, samesite=self.same_site)

    def clearing_header(self) -> str:
        """A ``Set-Cookie`` value that deletes the cookie (in Flask's answers and
        in the pipeline's refusals alike)."""
        return (f"{SESSION_COOKIE}=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; "
                f"Path=/; HttpOnly; SameSite={self.same_site}")
