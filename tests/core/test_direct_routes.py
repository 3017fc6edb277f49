"""The serving hot path, in process: Hokusai's ``direct`` operations reach
Flask straight from the ASGI adapter (mlflow_hokusai.direct), still through
every Flask hook and inside MLflow's security middlewares; and TCP_NODELAY on
the sockets uvicorn serves from (mlflow_hokusai.tcp)."""

from __future__ import annotations

import asyncio
import json
import os
import socket

import flask

from mlflow_hokusai import tcp
from mlflow_hokusai.direct import DirectRoutes
from mlflow_hokusai.plugins.serving import sandbox
from mlflow_hokusai.rest.blueprint import direct_endpoints
from mlflow_hokusai.routes import Route


def _flask_app() -> tuple[flask.Flask, list[str]]:
    app = flask.Flask(__name__)
    seen: list[str] = []
    app.before_request(lambda: seen.append("before") and None)

    @app.after_request
    def after(response):
        seen.append("after")
        response.headers["X-After"] = "1"
        return response

    @app.post("/api/echo")
    def echo():
        return {"got": flask.request.get_json(), "path": flask.request.path,
                "query": flask.request.args.to_dict()}, 201

    return app, seen


def _call(asgi_app, *, host: str = "127.0.0.1:5000", origin: str | None = None,
          body: bytes = b'{"a": 1}', chunks: int = 1):
    headers = [(b"host", host.encode()), (b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    if origin:
        headers.append((b"origin", origin.encode()))
    scope = {"type": "http", "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/api/echo", "raw_path": b"/api/echo", "root_path": "",
             "query_string": b"x=1", "headers": headers, "client": ("127.0.0.1", 4000),
             "server": ("127.0.0.1", 5000)}
    size = -(-len(body) // chunks)
    messages = [{"type": "http.request", "body": body[i:i + size],
                 "more_body": i + size < len(body)} for i in range(0, len(body), size)]
    sent = []

    async def receive():
        return messages.pop(0)

    async def send(message):
        sent.append(message)

    asyncio.run(asyncio.wait_for(asyncio_app_call(asgi_app, scope, receive, send), 30))
    start = sent[0]
    return start["status"], {k.decode().lower(): v.decode() for k, v in start["headers"]}, \
        b"".join(m.get("body", b"") for m in sent[1:])


async def asyncio_app_call(app, scope, receive, send):
    await app(scope, receive, send)


def test_a_direct_operation_is_served_by_flask_with_its_hooks():
    app, seen = _flask_app()
    status, headers, body = _call(DirectRoutes(app, frozenset({"echo"})).app,
                                  body=b'{"a": [1, 2, 3]}', chunks=3)
    assert status == 201
    assert json.loads(body) == {"got": {"a": [1, 2, 3]}, "path": "/api/echo",
                                "query": {"x": "1"}}
    assert seen == ["before", "after"] and headers["x-after"] == "1"
    # MLflow's security middlewares are around it, as around MLflow's own app.
    assert headers["x-content-type-options"] == "nosniff"


def test_mlflows_host_and_cross_origin_checks_still_apply():
    app, seen = _flask_app()
    direct = DirectRoutes(app, frozenset({"echo"}))
    assert _call(direct.app, host="attacker.example:5000")[0] == 403
    assert _call(direct.app, origin="https://attacker.example")[0] == 403
    assert seen == []  # refused before Flask


def test_only_declared_operations_are_direct():
    app, _ = _flask_app()
    direct = DirectRoutes(app, frozenset({"echo"}))
    assert direct.handles(Route("POST", "/api/echo", "echo", "read"))
    assert not direct.handles(Route("POST", "/api/other", "other", "read"))
    assert not direct.handles(None)


def test_the_serving_predictions_are_the_direct_operations():
    from mlflow_hokusai.plugins.serving.views import blueprint

    app = flask.Flask(__name__)
    app.register_blueprint(blueprint)
    assert direct_endpoints(app) == {"hokusai_serving.predictions_post",
                                     "hokusai_serving.deployment_predict_post"}


def _no_delay(sock: socket.socket) -> int:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_sockets_served_from_get_no_delay_and_others_are_left_alone():
    bound = socket.socket()  # as uvicorn's parent hands it to a worker: bound, not listening
    bound.bind(("127.0.0.1", 0))
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen(1)
    client = socket.create_connection(listening.getsockname())
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
    unbound = socket.socket()
    try:
        assert tcp.no_delay_on_listening_sockets() >= 2
        assert _no_delay(bound) and _no_delay(listening)
        assert not _no_delay(client) and not _no_delay(unbound)
        # Linux copies it to the connections the listening socket accepts from now on.
        later = socket.create_connection(listening.getsockname())
        accepted = dict(reversed(listening.accept()) for _ in range(2))
        assert _no_delay(accepted[later.getsockname()])
        assert not _no_delay(accepted[client.getsockname()])  # made before: as it was
        for sock in accepted.values():
            sock.close()
        later.close()
    finally:
        for sock in (bound, listening, client, unbound):
            sock.close()


def test_the_model_workers_socket_has_no_delay():
    with sandbox.listening_socket() as sock:
        assert _no_delay(sock)


def test_a_failing_bridge_answers_the_plain_500_the_adapter_renders(monkeypatch):
    from mlflow_hokusai import direct as direct_module

    def broken(scope, body):
        raise UnicodeDecodeError("ascii", b"\xff", 0, 1, "not ASCII")

    monkeypatch.setattr(direct_module, "build_environ", broken)
    app, seen = _flask_app()
    status, headers, body = _call(DirectRoutes(app, frozenset({"echo"})).app)
    assert (status, headers["content-type"], body) == (500, "text/plain", b"")
    assert seen == []


def test_slow_models_never_hold_the_pipelines_thread_pool(monkeypatch):
    from mlflow_hokusai import asgi

    def no_pool():
        raise AssertionError("the direct path used the pipeline's pool")

    monkeypatch.setattr(asgi, "_executor", no_pool)
    app, _ = _flask_app()
    assert _call(DirectRoutes(app, frozenset({"echo"})).app)[0] == 201


def test_looking_for_sockets_leaves_no_descriptor_behind():
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(3):
        tcp.no_delay_on_listening_sockets()
    assert len(os.listdir("/proc/self/fd")) == before
