"""Rendering the browser plugin's pages, all alike."""

from __future__ import annotations

import flask

# The pages load scripts and styles from this server's own files only, never
# inline, so an injected tag runs nothing; nothing may frame them.
CONTENT_SECURITY_POLICY = ("default-src 'self'; img-src 'self' data:; frame-ancestors 'self'; "
                           "form-action 'self'; base-uri 'none'")


def no_store(response: flask.Response) -> flask.Response:
    """Pages and answers that show who is logged in (or a new key) are not cached."""
    response.headers["Cache-Control"] = "no-store"
    return response


def page(template: str, status: int = 200, **values) -> flask.Response:
    response = flask.make_response(
        flask.render_template(f"hokusai_browser/{template}", **values), status)
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return no_store(response)
