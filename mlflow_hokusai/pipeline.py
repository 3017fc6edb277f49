"""What happens to every request before MLflow sees it, independent of ASGI/WSGI.

Plugins add steps (public routes, circuit breaker, authentication, rate
limits, permissions); each step reads and fills a ``RequestContext`` and raises
a ``HokusaiError`` to refuse. The first step resolves the request against the
route table once (``context.route``); every later step reads that decision.

A step that needs I/O it cannot do on an event loop raises ``LookupNeeded``
when called with ``allow_io=False``; the ASGI adapter then resumes the
pipeline in a thread from that step: the steps before it are not run again.
"""

from __future__ import annotations

import bisect
import collections
import contextvars
import dataclasses
import re
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote_plus, urlencode

from mlflow_hokusai import signals
from mlflow_hokusai.errors import BadRequest, HokusaiError

if TYPE_CHECKING:  # both import this module
    from mlflow_hokusai.plugins.auth.gate import Principal
    from mlflow_hokusai.routes import Route


class LookupNeeded(Exception):
    """The step needs blocking I/O; rerun the pipeline with ``allow_io=True``."""


def route_path(path: str, root_path: str = "") -> str:
    """The path as the routers will match it, so that no step judges one path
    while MLflow routes another: without the ASGI root path (as Starlette strips
    it), and with leading slashes collapsed (Werkzeug routes "//api/keys" as
    "/api/keys" without a redirect)."""
    if root_path and (path == root_path or path.startswith(root_path.rstrip("/") + "/")):
        path = path[len(root_path.rstrip("/")):]
    return "/" + path.lstrip("/")


def strip_query_key(query_string: str) -> str | None:
    """The query string minus ``api_key`` (however its name is encoded), or None
    when it has none: MLflow never needs it, and access logs would print it."""
    if "key" not in query_string.lower() and "%" not in query_string:
        return None
    pairs = parse_qsl(query_string, keep_blank_values=True)
    kept = [(k, v) for k, v in pairs if k != "api_key"]
    return urlencode(kept) if len(kept) < len(pairs) else None


@dataclasses.dataclass(frozen=True)
class RequestInfo:
    """The parts of an HTTP request the steps need, built from ASGI or WSGI."""

    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    query_string: str
    client: str | None
    # Header names given more than once (``headers`` keeps one value of each).
    repeated_headers: frozenset = frozenset()

    @classmethod
    def from_asgi(cls, scope) -> RequestInfo:
        counts = collections.Counter(k.decode("latin-1").lower() for k, _ in scope["headers"])
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        client = scope.get("client")
        return cls(scope.get("method", "GET").upper(),
                   route_path(scope["path"], scope.get("root_path", "")), headers,
                   scope.get("query_string", b"").decode("latin-1"), client[0] if client else None,
                   frozenset(name for name, count in counts.items() if count > 1))

    @classmethod
    def from_wsgi(cls, environ) -> RequestInfo:
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items()
                   if k.startswith("HTTP_")}
        for name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if name in environ:
                headers[name.replace("_", "-").lower()] = environ[name]
        # PEP 3333 hands PATH_INFO over as latin-1 decoded bytes; re-read as UTF-8
        # so the steps and Flask's router see the same path.
        path = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace")
        return cls(environ["REQUEST_METHOD"].upper(), route_path(path), headers,
                   environ.get("QUERY_STRING", ""), environ.get("REMOTE_ADDR"))


_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def _client_request_id(headers: dict[str, str]) -> str | None:
    """The caller's ``X-Request-ID`` when it is a sane token: kept beside ours
    (a proxy's id ties its logs to our records), never used as ours, so that a
    client can neither forge nor collide with the id of another request."""
    given = headers.get("x-request-id", "")
    return given if _REQUEST_ID.fullmatch(given) else None


@dataclasses.dataclass
class RequestContext:
    request: RequestInfo
    request_id: str = dataclasses.field(default_factory=lambda: uuid.uuid4().hex)
    client_request_id: str | None = None
    public: bool = False
    principal: Principal | None = None
    route: Route | None = None  # set by the first step
    route_params: dict = dataclasses.field(default_factory=dict)
    # Added to the response, whatever answers it (MLflow or a refusal).
    response_headers: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    # What steps noted for later ones (the audit trail's resources, ...).
    notes: dict = dataclasses.field(default_factory=dict)
    # Where a pipeline interrupted by LookupNeeded resumes.
    next_step: int = 0
    next_hook: int = 0
    refusal: HokusaiError | None = None

    def __post_init__(self):
        self.client_request_id = _client_request_id(self.request.headers)


def tag_request(context: RequestContext, allow_io: bool) -> None:
    """A step (first of all): every answer, refusals included, names its request."""
    context.response_headers.append(("X-Request-ID", context.request_id))


def refuse_nul_in_url(context: RequestContext, allow_io: bool) -> None:
    """A step: no route takes a NUL character in its path or query, and
    PostgreSQL refuses one in any text, so it is refused here, once for every
    route (MLflow's included), before a lookup could fail on it."""
    request = context.request
    if "\x00" in request.path or "\x00" in unquote_plus(request.query_string):
        raise BadRequest("The URL must not contain NUL characters (%00)")


# The context of the request being served; anyio copies it into the thread that
# runs Flask under uvicorn, and it is per-thread under gunicorn.
current_context: contextvars.ContextVar[RequestContext | None] = \
    contextvars.ContextVar("hokusai_request", default=None)


def current_principal() -> Principal | None:
    context = current_context.get()
    return context.principal if context else None


def request_context() -> RequestContext:
    """The context of the request being served, where there is one by design
    (a view, a step after the first)."""
    context = current_context.get()
    assert context is not None, "no request is being served"
    return context


def required_principal() -> Principal:
    """Who made the request being served, on a route that requires a principal."""
    principal = current_principal()
    assert principal is not None, "the route requires an authenticated principal"
    return principal


class Answered:
    """Once per request, when the response starts (the status is known and
    nothing has reached the client yet): sends ``signals.request_finished``, so
    whoever reads metrics after a response sees that response counted
    (``seconds`` is the time to the response's start), and returns the work the
    pipeline's answer hooks need done before the response goes out."""

    def __init__(self, context: RequestContext, pipeline: Pipeline):
        self.context = context
        self.pipeline = pipeline
        self.started = time.perf_counter()
        self.done = False

    def __call__(self, status: int) -> list[Callable[[], None]]:
        if self.done:
            return []
        self.done = True
        signals.request_finished.send(self.pipeline, context=self.context, status=status,
                                      seconds=time.perf_counter() - self.started)
        return self.pipeline.answering(self.context, status)


Step = Callable[[RequestContext, bool], None]


RefusalHook = Callable[[RequestContext, HokusaiError, bool], None]

# hook(context, status), called on the server's loop as the answer is about to
# start: cheap, it may return blocking work (or None) that must be done before
# the client gets any of the answer.
AnswerHook = Callable[[RequestContext, int], "Callable[[], None] | None"]


def run_all(works: list[Callable[[], None]]) -> None:
    for work in works:
        work()


class Pipeline:
    def __init__(self):
        self._steps: list[tuple[int, int, Step]] = []
        self._refusal_hooks: list[RefusalHook] = []
        self._answer_hooks: list[AnswerHook] = []
        self._shutdown_hooks: list[Callable[[], None]] = []

    def before_answer(self, hook: AnswerHook) -> None:
        """``hook(context, status)`` sees every answer, refusals included, before
        it is sent (the audit trail makes its record durable there)."""
        self._answer_hooks.append(hook)

    def answering(self, context: RequestContext, status: int) -> list[Callable[[], None]]:
        return [work for hook in self._answer_hooks if (work := hook(context, status))]

    def on_shutdown(self, hook: Callable[[], None]) -> None:
        """``hook()`` runs when the worker stops serving (uvicorn's lifespan
        shutdown); it may block. Hooks must also be safe to run again at exit."""
        self._shutdown_hooks.append(hook)

    def shutdown(self) -> None:
        run_all(self._shutdown_hooks)

    def add(self, step: Step, order: int) -> None:
        """Lower ``order`` runs first: the public-route check is -20, the browser's
        UI guard -19, the circuit breaker -10, the address lockout -5, the
        cross-site check -1, authentication 0, rate limits 10."""
        bisect.insort(self._steps, (order, len(self._steps), step))

    def on_refusal(self, hook: RefusalHook) -> None:
        """``hook(context, error, allow_io)`` sees every refusal; it may raise
        another HokusaiError to answer instead (a lockout after failed logins)."""
        self._refusal_hooks.append(hook)

    def run(self, context: RequestContext, allow_io: bool = True) -> None:
        """Run the steps not run yet; ``LookupNeeded`` leaves the context where
        a later ``run(context, allow_io=True)`` resumes."""
        if context.refusal is None:
            try:
                while context.next_step < len(self._steps):
                    self._steps[context.next_step][2](context, allow_io)
                    context.next_step += 1
                return
            except HokusaiError as error:
                context.refusal = error
        while context.next_hook < len(self._refusal_hooks):
            try:
                self._refusal_hooks[context.next_hook](context, context.refusal, allow_io)
            except HokusaiError as error:  # a hook answers instead (a lockout)
                context.refusal, context.next_hook = error, len(self._refusal_hooks)
                break
            context.next_hook += 1
        raise context.refusal
