"""A person's browser without a valid session goes to the login page; a program
keeps its 401 JSON. Only same-origin ``next`` targets are honoured."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from mlflow_hokusai.errors import AuthenticationFailed, LoginRequired
from mlflow_hokusai.pipeline import RequestContext, RequestInfo
from mlflow_hokusai.plugins.auth.permissions import SAFE_METHODS, normalize

LOGIN_PATH = "/login"


def is_navigation(request: RequestInfo) -> bool:
    """A browser loading a page: a GET that prefers HTML. Programs (MLflow's
    client, curl, requests) ask for JSON or ``*/*``."""
    if request.method not in SAFE_METHODS:
        return False
    mode = request.headers.get("sec-fetch-mode")
    if mode is not None:
        return mode == "navigate"
    return "text/html" in request.headers.get("accept", "")


def safe_next(target: str | None) -> str:
    """``target`` if it is a path on this server, else ``/``: a login link must
    never send a person to another site (``//evil``, ``/\\evil``, ``https:``)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    if any(c in target for c in "\\\r\n\t") or any(ord(c) < 32 for c in target):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target


def login_location(request: RequestInfo) -> str:
    target = request.path + (f"?{request.query_string}" if request.query_string else "")
    return f"{LOGIN_PATH}?next={quote(safe_next(target), safe='')}"


class NavigationSteps:
    def __init__(self, sessions):
        self.sessions = sessions

    @staticmethod
    def guard_ui(context: RequestContext, allow_io: bool) -> None:
        """A step after the public-route check: the UI's page (``/``, public for
        programs) needs a session when a browser navigates to it, so that a
        person without one lands on the login page instead of an empty UI."""
        request = context.request
        if context.public and normalize(request.path) == "/" and is_navigation(request):
            context.public = False

    def on_refusal(self, context: RequestContext, error, allow_io: bool) -> None:
        """A refused credential: a browser navigation goes to the login page and
        a refused session cookie is deleted (the UI's next calls then count as
        missing credentials, not as failed logins that lock the address out)."""
        if not isinstance(error, AuthenticationFailed):
            return
        request = context.request
        had_session = "hokusai_session=" in request.headers.get("cookie", "") and \
            error.reason != "missing"
        if is_navigation(request):
            raise LoginRequired(login_location(request),
                                clear_cookie=self.sessions.clearing_header()
                                if had_session else None) from None
        if had_session:
            error.headers["Set-Cookie"] = self.sessions.clearing_header()
