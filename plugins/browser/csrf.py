"""The cross-site request forgery check, a pipeline step (outermost, so it
covers MLflow's Flask and FastAPI routes, the artifact routes and Hokusai's).

A browser adds some credentials to every request to this server whichever page
makes it: the session cookie, and Basic credentials it cached. With one of
those, a request must come from this server's own pages: its ``Origin`` (sent
by browsers on every cross-origin request and every POST, PUT, PATCH and
DELETE) or, lacking one, its ``Referer`` must be this server. A credential a
page cannot set on a cross-site request (``Authorization: Bearer``/``ApiKey``,
``X-API-Key``) is left alone, and so is Basic sent by a program (no browser
headers at all), the way MLflow's client sends ``MLFLOW_TRACKING_PASSWORD``.
SameSite does not do this job: another port of the same host is the same site.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from mlflow_hokusai.errors import CrossSiteRefused
from mlflow_hokusai.pipeline import RequestContext, RequestInfo
from mlflow_hokusai.plugins.auth.permissions import SAFE_METHODS

_logger = logging.getLogger(__name__)
_DEFAULT_PORTS = {"http": "80", "https": "443"}
# Headers only a browser sends; any of them makes Basic credentials browser-held.
_BROWSER_HEADERS = ("origin", "referer", "sec-fetch-site", "sec-fetch-mode")


def _netloc(scheme: str, netloc: str) -> str:
    netloc = netloc.lower()
    default = _DEFAULT_PORTS.get(scheme)
    return netloc[:-len(default) - 1] if default and netloc.endswith(":" + default) else netloc


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of a URL, or None if it has none."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.netloc or "@" in parts.netloc:
        return None
    return f"{parts.scheme}://{_netloc(parts.scheme, parts.netloc)}"


class SameOrigin:
    def __init__(self, trusted_origins=()):
        self.trusted = {origin_of(o) for o in trusted_origins} - {None}

    def allows(self, origin: str | None, request: RequestInfo) -> bool:
        """True if ``origin`` is this server (as its ``Host`` names it) or trusted.
        The scheme is not compared: behind a TLS proxy the server sees http."""
        if origin is None or origin == "null":
            return False
        origin = origin_of(origin)
        if origin is None:
            return False
        if origin in self.trusted:
            return True
        scheme, _, netloc = origin.partition("://")
        host = request.headers.get("host", "")
        return bool(host) and netloc == _netloc(scheme, host)

    def check(self, request: RequestInfo) -> None:
        """Refuse a request that did not come from this server's own pages.
        Any method: with an ``Origin`` (a cross-origin fetch) even a read is
        refused, so another page cannot read with the person's credentials
        either, whatever MLflow's CORS allows."""
        origin = request.headers.get("origin")
        if origin is not None:
            if not self.allows(origin, request):
                self._refuse(request, f"Origin {origin[:100]!r} is not this server")
            return
        if request.method in SAFE_METHODS:
            return  # a navigation or same-origin read; it changes nothing
        if not self.allows(origin_of(request.headers.get("referer", "")), request):
            self._refuse(request, "no same-origin Origin or Referer")

    @staticmethod
    def _refuse(request: RequestInfo, why: str) -> None:
        _logger.info("Refused cross-site %s %s: %s", request.method, request.path, why)
        raise CrossSiteRefused("Cross-site request refused: a request made with the browser's "
                               "session or saved credentials must come from this server's "
                               "own pages")


def browser_held(credential, request: RequestInfo) -> bool:
    if credential is None or not credential.ambient:
        return False
    if credential.kind == "session":
        return True
    return any(name in request.headers for name in _BROWSER_HEADERS) or \
        "mozilla/" in request.headers.get("user-agent", "").lower()


class CsrfStep:
    """Runs before authentication: a forged request costs no key lookup."""

    def __init__(self, gate, same_origin: SameOrigin):
        self.gate = gate
        self.same_origin = same_origin

    def __call__(self, context: RequestContext, allow_io: bool) -> None:
        if context.public:
            return
        request = context.request
        if browser_held(self.gate.credential(request), request):
            self.same_origin.check(request)
