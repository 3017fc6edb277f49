"""``/login`` and ``/logout``: a person pastes an API key and gets a session.

The page's script sends the key as ``Authorization: Bearer`` in a same-origin
POST, so the gate verifies it exactly as any other request (format, hash
lookup, revocation, failed-login lockout, rate limits); the view then only
turns the verified principal into a cookie holding the key's id.
"""

from __future__ import annotations

import logging

import flask

from mlflow_hokusai.errors import BadRequest, CrossSiteRefused
from mlflow_hokusai.pipeline import current_principal, request_context
from mlflow_hokusai.plugins.auth.credentials import SESSION_COOKIE
from mlflow_hokusai.plugins.browser.navigation import LOGIN_PATH, safe_next
from mlflow_hokusai.plugins.browser.pages import no_store, page
from mlflow_hokusai.web import json_object

LOGOUT_PATH = "/logout"
blueprint = flask.Blueprint("hokusai_browser", __name__, template_folder="templates")
_logger = logging.getLogger(__name__)


def _browser():
    return flask.current_app.extensions["hokusai_browser"]


@blueprint.get(LOGIN_PATH)
def login_page():
    return page("login.html", next=safe_next(flask.request.args.get("next")))


@blueprint.post(LOGIN_PATH)
def login():
    """The gate has verified the key in ``Authorization``; a page from another
    origin must not log a person in (to the attacker's key), so the same-origin
    rule applies here although the key is explicit."""
    request = request_context().request
    if not _browser().same_origin.allows(request.headers.get("origin"), request):
        raise CrossSiteRefused()
    body = json_object(allowed={"next"})
    principal = current_principal()
    if principal is None or principal.key_id is None:
        raise BadRequest("Sessions are made from API keys, not JWTs")
    response = flask.jsonify({"next": safe_next(body.get("next")), "principal":
                              principal.username})
    _browser().sessions.set_cookie(response, principal.key_id, secure=flask.request.is_secure)
    _logger.info("Session started for API key %s", principal.label)
    return no_store(response)


@blueprint.get(LOGOUT_PATH)
def logout_page():
    if SESSION_COOKIE not in flask.request.cookies:
        return flask.redirect(LOGIN_PATH, code=303)
    return page("logout.html")


@blueprint.post(LOGOUT_PATH)
def logout():
    """Behind the gate and the cross-site check (a session cookie is ambient),
    so another site's page cannot log a person out either."""
    response = flask.redirect(LOGIN_PATH, code=303)
    response.headers.add("Set-Cookie", _browser().sessions.clearing_header())
    principal = current_principal()
    _logger.info("Session ended for %s", principal.label if principal else "unknown")
    return no_store(response)
