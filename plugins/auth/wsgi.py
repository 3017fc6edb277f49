"""The gate as a WSGI middleware around Flask's ``wsgi_app``: under gunicorn
only Flask routes exist, and this sees every one of them before routing."""

from __future__ import annotations

from http import HTTPStatus

from mlflow_hokusai.errors import HokusaiError, render
from mlflow_hokusai.plugins.auth.credentials import RequestInfo
from mlflow_hokusai.plugins.auth.gate import Gate, current_principal


class WsgiGate:
    def __init__(self, app, gate: Gate):
        self.app = app
        self.gate = gate

    def __call__(self, environ, start_response):
        try:
            principal = self.gate.check(RequestInfo.from_wsgi(environ))
        except HokusaiError as error:
            status, headers, body = render(error)
            start_response(f"{status} {HTTPStatus(status).phrase}", headers)
            return [body]
        token = current_principal.set(principal)
        try:
            return self.app(environ, start_response)
        finally:
            current_principal.reset(token)
