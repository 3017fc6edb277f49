"""Rewriting a FastAPI-native route's JSON answer before it leaves, held back
until it is complete. Two uses: lists that are not paged and so can be
filtered afterwards without short pages (as MLflow basic-auth's
``FASTAPI_ENDPOINT_RESPONSE_FILTERS`` do; a pipeline step puts
``context.notes["answer_filter"]``, dict -> dict), and FastAPI's bare
``{"detail": ...}`` errors, given the server's one error body."""

from __future__ import annotations

import json


def _is_json_ok(start) -> bool:
    return start["status"] == 200


def filtering_send(send, rewrite, wanted=_is_json_ok):
    """A ``send`` that holds back a JSON answer whose start message ``wanted``
    picks (default: a 200) and sends ``rewrite(status, parsed body)`` with its
    length corrected, or the answer unchanged when that is None or the body is
    not JSON; any other answer passes at once."""
    held: list = []  # the start message, then the body parts

    async def send_filtered(message):
        if message["type"] == "http.response.start":
            if not wanted(message):
                held.append(None)
                return await send(message)
            held.append(message)
            return None
        if message["type"] != "http.response.body" or not held or held[0] is None:
            return await send(message)
        held.append(message.get("body", b""))
        if message.get("more_body"):
            return None
        start, original = held[0], b"".join(held[1:])
        try:
            rewritten = rewrite(start["status"], json.loads(original))
        except (ValueError, RecursionError):
            rewritten = None
        body = original if rewritten is None else json.dumps(rewritten).encode()
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
        return None

    return send_filtered
