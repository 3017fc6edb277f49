"""Rendering the browser plugin's pages, all alike."""

from __future__ import annotations

import datetime
from typing import TypeVar

import flask
import werkzeug.wrappers

# The pages load scripts and styles from this server's own files only, never
# inline, so an injected tag runs nothing; nothing may frame them.
CONTENT_SECURITY_POLICY = ("default-src 'self'; img-src 'self' data:; frame-ancestors 'self'; "
                           "form-action 'self'; base-uri 'none'")


ResponseT = TypeVar("ResponseT", bound=werkzeug.wrappers.Response)


def no_store(response: ResponseT) -> ResponseT:
    """Pages and answers that show who is logged in (or a new key) are not cached."""
    response.headers["Cache-Control"] = "no-store"
    return response


def page(template: str, status: int = 200, **values) -> flask.Response:
    response = flask.make_response(
        flask.render_template(f"hokusai_browser/{template}", **values), status)
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return no_store(response)


def when(value: datetime.datetime | str | None) -> str:
    """A time (a datetime, or ISO 8601 as /api/keys gives it) as people read it
    on a page: UTC, to the minute."""
    if not value:
        return ""
    if isinstance(value, str):
        value = datetime.datetime.fromisoformat(value)
    return value.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
