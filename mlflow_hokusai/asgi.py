"""The pipeline as a pure ASGI middleware: outermost under uvicorn, so it sees the
FastAPI-native routes (artifacts, OTLP, jobs, gateway, MCP...) that a Flask
``before_request`` hook never sees."""

from __future__ import annotations

import anyio

from mlflow_hokusai.bodies import BodyLimit
from mlflow_hokusai.errors import HokusaiError, render
from mlflow_hokusai.prefixes import unprefix_asgi
from mlflow_hokusai.pipeline import (Answered, LookupNeeded, Pipeline, RequestContext,
                                     RequestInfo, current_context, run_all, strip_query_key)


def _encode(headers) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]


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
    def __init__(self, app, pipeline: Pipeline, body_limit: BodyLimit):
        self.app = app
        self.pipeline = pipeline
        self.body_limit = body_limit

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
        answered = Answered(self, context, self.pipeline)
        try:
            try:
                self.pipeline.run(context, allow_io=False)
            except LookupNeeded:
                # Keep the event loop free while a step does blocking I/O: the
                # pipeline resumes in a thread at that step.
                await anyio.to_thread.run_sync(self.pipeline.run, context)
            receive = await self._limit_body(context.request, receive)
        except HokusaiError as error:
            await _finish(answered(error.status))
            return await _refuse(scope, send, error, context.response_headers)

        principal = context.principal
        if principal is not None:
            state = scope.setdefault("state", {})
            state["username"] = principal.username
            state["hokusai_principal"] = principal
        extra = _encode(context.response_headers)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                await _finish(answered(message["status"]))
                if extra:
                    message = {**message, "headers": list(message.get("headers", [])) + extra}
            await send(message)

        token = current_context.set(context)
        try:
            await self.app(scope, receive, send_with_headers)
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


async def _finish(works) -> None:
    """Blocking work that must be done before the answer starts, off the loop."""
    if works:
        await anyio.to_thread.run_sync(run_all, works)


async def _refuse(scope, send, error: HokusaiError, extra_headers) -> None:
    if scope["type"] == "websocket":
        # 1008: policy violation. Closing before accept makes the server answer 403.
        await send({"type": "websocket.close", "code": 1008})
        return
    status, headers, body = render(error)
    await send({"type": "http.response.start", "status": status,
                "headers": _encode(headers + extra_headers)})
    await send({"type": "http.response.body", "body": body})
