"""The gate as a pure ASGI middleware: outermost under uvicorn, so it sees the
FastAPI-native routes (artifacts, OTLP, jobs, gateway, MCP...) that a Flask
``before_request`` hook never sees."""

from __future__ import annotations

import anyio

from mlflow_hokusai.errors import HokusaiError, render
from mlflow_hokusai.plugins.auth.credentials import RequestInfo
from mlflow_hokusai.plugins.auth.gate import Gate, LookupNeeded, current_principal


class AsgiGate:
    def __init__(self, app, gate: Gate):
        self.app = app
        self.gate = gate

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        request = RequestInfo.from_asgi(scope)
        try:
            try:
                principal = self.gate.check(request, allow_io=False)
            except LookupNeeded:
                # Keep the event loop free while the key store is queried.
                principal = await anyio.to_thread.run_sync(self.gate.check, request)
        except HokusaiError as error:
            return await _refuse(scope, send, error)
        if principal is not None:
            state = scope.setdefault("state", {})
            state["username"] = principal.username
            state["hokusai_principal"] = principal
        token = current_principal.set(principal)
        try:
            await self.app(scope, receive, send)
        finally:
            current_principal.reset(token)


async def _refuse(scope, send, error: HokusaiError) -> None:
    if scope["type"] == "websocket":
        # 1008: policy violation. Closing before accept makes the server answer 403.
        await send({"type": "websocket.close", "code": 1008})
        return
    status, headers, body = render(error)
    await send({"type": "http.response.start", "status": status,
                "headers": [(k.lower().encode(), v.encode()) for k, v in headers]})
    await send({"type": "http.response.body", "body": body})
