"""The pipeline as a pure ASGI middleware: outermost under uvicorn, so it sees the
FastAPI-native routes (artifacts, OTLP, jobs, gateway, MCP...) that a Flask
``before_request`` hook never sees."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import threading

import anyio

from mlflow_hokusai.answer_filter import filtering_send
from mlflow_hokusai.bodies import BodyLimit
from mlflow_hokusai.errors import FromFastApi, HokusaiError, render
from mlflow_hokusai.pipeline import (
    Answered,
    LookupNeeded,
    Pipeline,
    RequestContext,
    RequestInfo,
    current_context,
    run_all,
    strip_query_key,
)
from mlflow_hokusai.prefixes import unprefix_asgi


def encode_headers(headers) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]


# The pipeline's lookups and the answer hooks' work (the audit spool's fsync)
# leave the event loop for this pool: a plain executor hop costs the loop far
# less CPU than ``anyio.to_thread.run_sync`` (no capacity limiter, cancel scope
# or async-library sniffing per call), and every request makes one or two.
# As many threads as anyio's default limiter allows its own.
_POOL_THREADS = 40
_pool: concurrent.futures.ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> concurrent.futures.ThreadPoolExecutor:
    global _pool
    if _pool is None:
        with _pool_lock:  # made on first use: never before a server forks its workers
            if _pool is None:
                _pool = concurrent.futures.ThreadPoolExecutor(
                    _POOL_THREADS, thread_name_prefix="hokusai-pipeline")
    return _pool


async def _in_thread(function, *args):
    """``function(*args)`` in the pool, with the caller's context variables (as
    anyio's hop copies them)."""
    call = functools.partial(contextvars.copy_context().run, function, *args)
    return await asyncio.get_running_loop().run_in_executor(_executor(), call)


async def _read_at_most(receive, max_bytes: int):
    """Read a chunked body up to ``max_bytes``: a receive callable that replays
    it to the app, or None as soon as the body passes the limit."""
    messages, size = [], 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break  # the client went away; the app sees it as it would have
        size += len(message.get("body", b""))
        if size > max_bytes:
            return None
        if not message.get("more_body"):
            break

    async def replay():
        return messages.pop(0) if messages else await receive()

    return replay


class AsgiAdapter:
    def __init__(self, app, pipeline: Pipeline, body_limit: BodyLimit, direct=None):
        self.app = app
        self.pipeline = pipeline
        self.body_limit = body_limit
        self.direct = direct  # mlflow_hokusai.direct.DirectRoutes, or None

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            return await self.app(scope, receive, self._on_shutdown(send))
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        unprefix_asgi(scope)
        context = RequestContext(RequestInfo.from_asgi(scope))
        stripped = strip_query_key(context.request.query_string)
        if stripped is not None:
            scope["query_string"] = stripped.encode()
        answered = Answered(context, self.pipeline)
        try:
            try:
                self.pipeline.run(context, allow_io=False)
            except LookupNeeded:
                # Keep the event loop free while a step does blocking I/O: the
                # pipeline resumes in a thread at that step.
                await _in_thread(self.pipeline.run, context)
            receive = await self._limit_body(context.request, receive)
        except HokusaiError as error:
            await _finish(answered(error.status))
            return await _refuse(scope, send, error, context)

        principal = context.principal
        if principal is not None:
            state = scope.setdefault("state", {})
            state["username"] = principal.username
            state["hokusai_principal"] = principal
        extra = encode_headers(context.response_headers)
        # Starlette's text "Internal Server Error" (a FastAPI-native route failed)
        plain_500: list[bytes | None] = []

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                await _finish(answered(message["status"]))
                if _is_plain_500(message):
                    status, headers, body = render(HokusaiError(), context.request_id)
                    plain_500.append(body)
                    message = {**message, "headers": encode_headers(headers)}
                if extra:
                    message = {**message, "headers": list(message.get("headers", [])) + extra}
            elif message["type"] == "http.response.body" and plain_500:
                if plain_500[0] is None:
                    return  # the replacement body was complete
                message, plain_500[0] = {**message, "body": plain_500[0],
                                         "more_body": False}, None
            await send(message)

        sending = filtering_send(send_with_headers, _reference_error(context.request_id),
                                 _is_json_error)
        answer_filter = context.notes.get("answer_filter")
        if answer_filter:
            sending = filtering_send(sending, lambda status, answer: answer_filter(answer))
        app = self.direct.app if self.direct is not None and \
            self.direct.handles(context.route) else self.app
        token = current_context.set(context)
        try:
            await app(scope, receive, sending)
        finally:
            current_context.reset(token)
            await _finish(answered(500))  # no-op unless the app failed before answering

    async def _limit_body(self, request: RequestInfo, receive):
        limit = self.body_limit
        if not limit.applies(request):
            return receive
        if limit.declared_too_large(request):
            raise limit.error()
        if limit.streams_undeclared(request):
            receive = await _read_at_most(receive, limit.max_bytes)
            if receive is None:
                raise limit.error()
        return receive

    def _on_shutdown(self, send):
        """Uvicorn's lifespan shutdown (SIGTERM, SIGINT): the pipeline's shutdown
        hooks run after the app's own, before uvicorn exits (it re-raises the
        signal then, so ``atexit`` would never run)."""
        async def send_after_shutdown(message):
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                await anyio.to_thread.run_sync(self.pipeline.shutdown)
            await send(message)
        return send_after_shutdown


def _is_json_error(start) -> bool:
    return start["status"] >= 400 and any(
        k.lower() == b"content-type" and v.startswith(b"application/json")
        for k, v in start.get("headers", []))


def _reference_error(request_id: str):
    """FastAPI's bare ``{"detail": ...}`` error (MLflow's native routes), as
    the server's one error body; Flask's and Hokusai's already are."""
    def rewrite(status: int, answer):
        if isinstance(answer, dict) and "detail" in answer and "error" not in answer:
            return FromFastApi(status, answer["detail"]).body(request_id)
        return None
    return rewrite


def _is_plain_500(message) -> bool:
    """Starlette's own answer to an exception in a native route, which the
    server's one error body replaces (nothing of the cause, the request id)."""
    return message["status"] == 500 and any(
        k.lower() == b"content-type" and v.startswith(b"text/plain")
        for k, v in message.get("headers", []))


async def _finish(works) -> None:
    """Blocking work that must be done before the answer starts, off the loop."""
    if works:
        await _in_thread(run_all, works)


async def _refuse(scope, send, error: HokusaiError, context: RequestContext) -> None:
    if scope["type"] == "websocket":
        # 1008: policy violation. Closing before accept makes the server answer 403.
        await send({"type": "websocket.close", "code": 1008})
        return
    status, headers, body = render(error, context.request_id)
    await send({"type": "http.response.start", "status": status,
                "headers": encode_headers(headers + context.response_headers)})
    await send({"type": "http.response.body", "body": body})
