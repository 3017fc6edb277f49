"""The ASGI answer filter (mlflow_hokusai.answer_filter), in-process."""

from __future__ import annotations

import json

import anyio

from mlflow_hokusai.answer_filter import filtering_send


def _sent(messages, rewrite) -> list[dict]:
    out: list[dict] = []

    async def send(message):
        out.append(message)

    async def run():
        send_filtered = filtering_send(send, rewrite)
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
                lambda answer: {"jobs": [j for j in answer["jobs"] if j["creator"] == "a"]})
    assert len(out) == 2
    filtered = out[1]["body"]
    assert json.loads(filtered) == {"jobs": [{"creator": "a"}]}
    assert (b"content-length", str(len(filtered)).encode()) in out[0]["headers"]
    assert sum(k == b"content-length" for k, _ in out[0]["headers"]) == 1


def test_an_error_answer_passes_unchanged():
    body = b'{"detail": "no"}'
    messages = [_start(400, len(body)), {"type": "http.response.body", "body": body}]
    assert _sent(messages, lambda answer: {}) == messages
