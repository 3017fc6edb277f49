"""The MLflow UI for people: a login page that turns an API key into a signed
session cookie, the redirect of browsers without one, the cross-site request
forgery check every browser-held credential passes, and the Hokusai view
(``/hokusai/``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import flask

from mlflow_hokusai.plugins.auth.scopes import ADMIN, READ
from mlflow_hokusai.plugins.browser import pages
from mlflow_hokusai.plugins.browser.csrf import CsrfStep, SameOrigin
from mlflow_hokusai.plugins.browser.navigation import LOGIN_PATH, NavigationSteps
from mlflow_hokusai.plugins.browser.sessions import Sessions, session_secret

STATIC_DIR = Path(__file__).parent / "static"
STATIC_PATH = LOGIN_PATH + "/static"
# Installed after the limiter: its refusal hook (which may answer with the login
# page and end the hooks) runs after the limiter counted the failed credential.
NEEDS = ("ratelimit",)


@dataclasses.dataclass(frozen=True)
class Browser:
    sessions: Sessions
    same_origin: SameOrigin


def init_app(flask_app: flask.Flask, hokusai) -> None:
    from mlflow_hokusai.plugins.browser import login, views

    settings = hokusai.settings
    same_origin = SameOrigin(settings.csrf_trusted_origins)
    # After the circuit breaker and lockout, before authentication: a forged
    # request is refused without a key lookup.
    hokusai.pipeline.add(CsrfStep(hokusai.gate, same_origin), order=-1)

    assets = flask.Blueprint("hokusai_assets", __name__, static_folder="static",
                             static_url_path=STATIC_PATH)
    assets.add_app_template_filter(pages.when, "hokusai_time")  # app-wide: prefixed
    flask_app.register_blueprint(assets)
    for path in sorted(STATIC_DIR.iterdir()):
        hokusai.routes.add_public_path(f"{STATIC_PATH}/{path.name}")
    hokusai.routes.add_rule({"GET", "HEAD"}, views.KEYS_PAGE, ADMIN)
    flask_app.register_blueprint(views.blueprint)

    if not settings.sessions_enabled:
        return
    sessions = Sessions(session_secret(settings), settings.session_hours,
                        settings.session_same_site)
    hokusai.gate.sessions = sessions
    flask_app.extensions["hokusai_browser"] = Browser(sessions, same_origin)
    navigation = NavigationSteps(sessions)
    hokusai.pipeline.add(navigation.guard_ui, order=-19)
    hokusai.pipeline.on_refusal(navigation.on_refusal)
    hokusai.routes.add_public_path(LOGIN_PATH)
    hokusai.routes.add_public_path(login.LOGOUT_PATH)
    # Logging in needs a valid key of any scope (the gate checks it).
    hokusai.routes.add_rule({"POST"}, f"{LOGIN_PATH}|{login.LOGOUT_PATH}", READ)
    flask_app.register_blueprint(login.blueprint)
