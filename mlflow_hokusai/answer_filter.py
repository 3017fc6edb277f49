"""Rewriting a FastAPI-native route's JSON answer before it leaves (as MLflow
basic-auth's ``FASTAPI_ENDPOINT_RESPONSE_FILTERS`` do), for lists that are not
paged and so can be filtered afterwards without short pages: a pipeline step
puts ``context.notes["answer_filter"]`` (dict -> dict); the ASGI adapter holds
the answer back until it is complete, then sends the filtered one."""

from __future__ import annotations

import json


def filtering_send(send, rewrite):
    """A ``send`` that buffers a 200 JSON answer and sends ``rewrite(body)``
    with its length corrected; any other answer passes unchanged."""
    held: list = []  # the start message, then the body parts

    async def send_filtered(message):
        if message["type"] == "http.response.start":
            if message["status"] != 200:
                held.append(None)
                return await send(message)
            held.append(message)
            return None
        if message["type"] != "http.response.body" or not held or held[0] is None:
            return await send(message)
        held.append(message.get("body", b""))
        if message.get("more_body"):
            return None
        body = json.dumps(rewrite(json.loads(b"".join(held[1:])))).encode()
        headers = [(k, v) for k, v in held[0].get("headers", []) if k.lower() != b"content-length"]
        await send({**held[0], "headers": [*headers, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
        return None

    return send_filtered
