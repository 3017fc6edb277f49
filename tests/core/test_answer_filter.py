"""The ASGI answer filter (mlflow_hokusai.answer_filter), in-process."""

from __future__ import annotations

import json

import anyio

from mlflow_hokusai import asgi
from mlflow_hokusai.answer_filter import filtering_send


def _sent(messages, rewrite, *wanted) -> list[dict]:
    out: list[dict] = []

    async def send(message):
        out.append(message)

    async def run():
        send_filtered = filtering_send(send, rewrite, *wanted)
        for message in messages:
            await send_filtered(message)

    anyio.run(run)
    return out


def _start(status: int, length: int) -> dict:
    return {"type": "http.response.start", "status": status,
            "headers": [(b"content-type", b"application/json"),
                        (b"content-length", str(length).encode())]}


def test_a_chunked_json_answer_is_rewritten_whole_with_its_length():
    body = json.dumps({"jobs": [{"creator": "a"}, {"creator": "b"}]}).encode()
    out = _sent([_start(200, len(body)),
                 {"type": "http.response.body", "body": body[:10], "more_body": True},
                 {"type": "http.response.body", "body": body[10:]}],
                lambda status, answer: {"jobs": [j for j in answer["jobs"]
                                                 if j["creator"] == "a"]})
    assert len(out) == 2
    filtered = out[1]["body"]
    assert json.loads(filtered) == {"jobs": [{"creator": "a"}]}
    assert (b"content-length", str(len(filtered)).encode()) in out[0]["headers"]
    assert sum(k == b"content-length" for k, _ in out[0]["headers"]) == 1


def test_an_error_answer_passes_unchanged():
    body = b'{"detail": "no"}'
    messages = [_start(400, len(body)), {"type": "http.response.body", "body": body}]
    assert _sent(messages, lambda status, answer: {}) == messages


def _error(status: int, body: bytes) -> dict:
    out = _sent([_start(status, len(body)), {"type": "http.response.body", "body": body}],
                asgi._reference_error("req-1"), asgi._is_json_error)
    assert dict(out[0]["headers"])[b"content-length"] == str(len(out[1]["body"])).encode()
    return json.loads(out[1]["body"])


def test_fastapis_bare_errors_get_every_form_of_the_one_error_body():
    # MLflow's FastAPI-native routes (jobs, gateway, OTLP) answer {"detail": ...}.
    body = _error(404, b'{"detail": "Job with ID nope not found"}')
    assert body == {"detail": "Job with ID nope not found",
                    "error": {"code": "RESOURCE_NOT_FOUND",
                              "message": "Job with ID nope not found"},
                    "error_code": "ENDPOINT_NOT_FOUND", "message": "Job with ID nope not found",
                    "request_id": "req-1"}
    issues = [{"loc": ["body", "name"], "msg": "Field required", "type": "missing"}]
    body = _error(422, json.dumps({"detail": issues}).encode())
    assert body["detail"] == issues  # as FastAPI answered
    assert body["message"] == body["error"]["message"] == \
        "Invalid request: body.name: Field required"
    assert body["error"]["code"] == "INVALID_PARAMETER" and body["request_id"] == "req-1"


def test_errors_that_already_have_the_one_body_or_are_not_json_pass_unchanged():
    ours = json.dumps({"detail": "x", "error": {"code": "C", "message": "x"}}).encode()
    messages = [_start(403, len(ours)), {"type": "http.response.body", "body": ours}]
    assert _sent(messages, asgi._reference_error("r"), asgi._is_json_error)[1]["body"] == ours
    broken = b'{"detail": '
    messages = [_start(400, len(broken)), {"type": "http.response.body", "body": broken}]
    assert _sent(messages, asgi._reference_error("r"), asgi._is_json_error)[1]["body"] == broken
    ok = b'{"detail": "fine"}'
    messages = [_start(200, len(ok)), {"type": "http.response.body", "body": ok}]
    assert _sent(messages, asgi._reference_error("r"), asgi._is_json_error) == messages
