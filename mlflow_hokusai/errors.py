"""Exceptions that carry their HTTP answer, and the one place that renders them.

Every Hokusai error has a status, an MLflow-compatible ``error_code`` (so MLflow
clients raise a clean ``RestException``), a human ``detail`` and the Hokusai API
reference's ``code``. One JSON object carries every form a client may read:
``{"detail", "error": {"code", "message"}, "error_code", "message",
"request_id"}``. The ASGI and WSGI gates, the Flask blueprints and the app's
handlers of unknown paths and unexpected failures all answer through ``render``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from typing import Any, ClassVar

_logger = logging.getLogger(__name__)


# The API reference's codes (``error.code``), by status; MLflow's stay in ``error_code``.
REFERENCE_CODES = {400: "INVALID_PARAMETER", 401: "UNAUTHORIZED", 303: "UNAUTHORIZED",
                   403: "PERMISSION_DENIED", 404: "RESOURCE_NOT_FOUND", 405: "INVALID_PARAMETER",
                   409: "RESOURCE_ALREADY_EXISTS", 413: "INVALID_PARAMETER",
                   415: "INVALID_PARAMETER", 422: "INVALID_PARAMETER",
                   429: "RATE_LIMIT_EXCEEDED", 501: "NOT_IMPLEMENTED",
                   503: "SERVICE_UNAVAILABLE"}


def reference_code(status: int) -> str:
    return REFERENCE_CODES.get(status, "INVALID_PARAMETER" if 400 <= status < 500
                               else "INTERNAL_ERROR")


class HokusaiError(Exception):
    status = 500
    error_code = "INTERNAL_ERROR"
    default_detail = "Internal server error"

    def __init__(self, detail: Any = None, *, headers: dict[str, str] | None = None, **extra):
        # A message, or what a subclass answers with (ValidationFailed: a list of issues).
        self.detail: Any = self.default_detail if detail is None else detail
        self.headers = dict(headers or {})
        self.extra = extra
        super().__init__(self.detail if isinstance(self.detail, str) else json.dumps(self.detail))

    def body(self, request_id: str | None = None) -> dict[str, Any]:
        message = self.detail if isinstance(self.detail, str) else self.default_detail
        body = {"detail": self.detail,
                "error": {"code": reference_code(self.status), "message": message},
                "error_code": self.error_code, "message": message, **self.extra}
        if request_id:
            body["request_id"] = request_id
        return body


class ConfigurationError(HokusaiError):
    error_code = "INVALID_STATE"
    default_detail = "Invalid Hokusai configuration"


class BadRequest(HokusaiError):
    status = 400
    error_code = "INVALID_PARAMETER_VALUE"
    default_detail = "Invalid request"


class AuthenticationFailed(HokusaiError):
    """401. ``reason`` (missing, malformed, invalid, expired, revoked) is for logs
    and metrics only: clients see one of two fixed messages."""

    status = 401
    error_code = "UNAUTHENTICATED"
    default_detail = "Invalid or expired API key"
    # Bearer only: Basic is still accepted, but a Basic challenge would make a
    # browser prompt (and cache the key where any page can use it); people log
    # in at /login instead.
    challenge = 'Bearer realm="hokusai"'

    def __init__(self, reason: str):
        detail = "API key required" if reason == "missing" else self.default_detail
        super().__init__(detail, headers={"WWW-Authenticate": self.challenge})
        self.reason = reason


class LoginRequired(HokusaiError):
    """A person's browser, sent to the login page instead of a 401 (303 See Other)."""

    status = 303
    error_code = "UNAUTHENTICATED"
    default_detail = "Log in first"

    def __init__(self, location: str, *, clear_cookie: str | None = None):
        headers = {"Location": location, "Cache-Control": "no-store"}
        if clear_cookie:
            headers["Set-Cookie"] = clear_cookie
        super().__init__(headers=headers)
        self.reason = "login"


class CrossSiteRefused(HokusaiError):
    """A request whose credential the browser added by itself (a session cookie,
    cached Basic credentials) that comes from another site's page."""

    status = 403
    error_code = "PERMISSION_DENIED"
    default_detail = "Cross-site request refused"


class UnsupportedMediaType(HokusaiError):
    status = 415
    error_code = "INVALID_PARAMETER_VALUE"
    default_detail = "The request body must be JSON (Content-Type: application/json)"


class PermissionDenied(HokusaiError):
    status = 403
    error_code = "PERMISSION_DENIED"
    default_detail = "Permission denied"

    def __init__(self, missing_scope: str):
        super().__init__(f"This credential lacks the '{missing_scope}' scope",
                         required_scope=missing_scope)
        self.reason = "forbidden"


class RouteNotClassified(HokusaiError):
    """A route the route table does not know (a newer MLflow's): served to nobody
    until someone judges it (plugins/auth/resources.py)."""

    status = 403
    error_code = "PERMISSION_DENIED"

    def __init__(self, template: str):
        super().__init__(f"Route {template} is not classified by this server; refused")
        self.reason = "unclassified"


class WorkspaceRefused(HokusaiError):
    """403: the credential is not bound to the MLflow workspace the request names."""

    status = 403
    error_code = "PERMISSION_DENIED"

    def __init__(self, workspace: str):
        super().__init__(f"This credential is not bound to workspace '{workspace}'",
                         workspace=workspace)
        self.reason = "workspace"


class NotFound(HokusaiError):
    status = 404
    error_code = "RESOURCE_DOES_NOT_EXIST"
    default_detail = "Not found"


class FromHttp(HokusaiError):
    """What Werkzeug raises outside any view (an unknown path, a method the
    route does not allow): answered as JSON like every other error."""

    def __init__(self, exc):
        super().__init__(exc.description or exc.name,
                         headers={"Allow": ", ".join(exc.valid_methods)}
                         if getattr(exc, "valid_methods", None) else None)
        self.status = exc.code or 500
        self.error_code = {404: "ENDPOINT_NOT_FOUND", 405: "INVALID_PARAMETER_VALUE"}.get(
            self.status, "BAD_REQUEST" if self.status < 500 else "INTERNAL_ERROR")


class FromMlflowText(HokusaiError):
    """An error MLflow answered as plain text or HTML (a disabled route's 503, a
    werkzeug 400), answered as JSON with its status and MLflow's error code."""

    MLFLOW_CODES: ClassVar[dict[int, str]] = {
        400: "INVALID_PARAMETER_VALUE", 403: "PERMISSION_DENIED", 404: "ENDPOINT_NOT_FOUND",
        501: "NOT_IMPLEMENTED", 503: "TEMPORARILY_UNAVAILABLE"}

    def __init__(self, status: int, message: str):
        super().__init__(without_sql(message))
        self.status = status
        self.error_code = self.MLFLOW_CODES.get(
            status, "BAD_REQUEST" if status < 500 else "INTERNAL_ERROR")


class FromFastApi(FromMlflowText):
    """A FastAPI-native MLflow route's bare ``{"detail": ...}`` error (an
    ``HTTPException``'s text, or pydantic's list of issues), with every form."""

    def __init__(self, status: int, detail: Any):
        issues = detail if isinstance(detail, list) else None
        super().__init__(status, _issue_summary(issues) if issues else str(detail))
        if issues:
            self.detail = issues  # as FastAPI answered, for clients that read it

    def body(self, request_id: str | None = None) -> dict[str, Any]:
        body = super().body(request_id)
        if not isinstance(self.detail, str):  # the list's summary, not a default
            body["message"] = body["error"]["message"] = str(self)
        return body


def _issue_summary(issues: list) -> str:
    parts = []
    for issue in issues[:5]:
        where = ".".join(map(str, issue.get("loc", []))) if isinstance(issue, dict) else ""
        what = issue.get("msg", "invalid") if isinstance(issue, dict) else str(issue)
        parts.append(f"{where}: {what}" if where else str(what))
    return "Invalid request: " + "; ".join(parts)


class ResourcePermissionDenied(HokusaiError):
    """403: the principal may read the resource but lacks the level a route needs."""

    status = 403
    error_code = "PERMISSION_DENIED"

    def __init__(self, resource_type: str, resource_id: str, needed: str, held: str):
        super().__init__(f"Permission denied: {needed} on {resource_type} '{resource_id}' is "
                         f"required; this credential's principal has {held}",
                         resource_type=resource_type, resource_id=resource_id,
                         required_permission=needed)
        self.reason = "resource"


class SourceRefused(HokusaiError):
    """403: a model version's source lies where the principal may not read (or
    where no experiment can be told, which only ``admin`` keys may name)."""

    status = 403
    error_code = "PERMISSION_DENIED"

    def __init__(self, creating: bool, attributable: bool):
        act = "register a model version from" if creating else "read the files of a model " \
            "version from"
        where = "a source in an experiment this credential's principal may not READ" \
            if attributable else "a source outside this server's artifact stores (only " \
            "admin keys may)"
        super().__init__(f"Permission denied: cannot {act} {where}",
                         required_permission="READ")
        self.reason = "resource"


_HIDDEN = {"experiment": "No Experiment with id={} exists", "run": "Run with id={} not found",
           "registered_model": "Registered Model with name={} not found",
           "trace": "Trace with ID '{}' not found.",
           "dataset": "Evaluation dataset with id '{}' not found",
           "label_schema": "Label schema with id '{}' not found.",
           "review_queue": "Review queue with id '{}' not found.",
           "issue": "Issue with id '{}' not found.",
           "scorer": "Scorer with id '{}' not found.", "job": "Job with ID {} not found"}


class ResourceHidden(NotFound):
    """404 for a resource the principal may not read: answered in MLflow's words
    for a missing one, so the refusal does not tell that it exists."""

    def __init__(self, kind: str, ident: str):
        super().__init__(_HIDDEN.get(kind, "Resource {} not found").format(ident))
        self.reason = "hidden"


class PayloadTooLarge(HokusaiError):
    status = 413
    error_code = "INVALID_PARAMETER_VALUE"
    default_detail = "Request too large"


class ValidationFailed(HokusaiError):
    """422 with FastAPI's body: ``detail`` is a list of ``{"loc", "msg", "type"}``."""

    status = 422
    error_code = "INVALID_PARAMETER_VALUE"
    default_detail = "Invalid request"


# How a database driver's error reads once SQLAlchemy (and MLflow, wrapping it)
# made it a message: "(psycopg2.errors.X) ... [SQL: ...] [parameters: ...]".
_DATABASE_ERROR = re.compile(r"\[SQL: |\((?:psycopg2?|sqlite3|pymysql|MySQLdb|sqlalchemy)"
                             r"[\w.]*\)")
DATABASE_ERROR_MESSAGE = "The database refused the request (the server log has the details)"


def without_sql(message: str) -> str:
    """``message``, unless it is a database error's text, which can carry the SQL
    statement, its parameters and the database's host: those stay in the log."""
    if isinstance(message, str) and _DATABASE_ERROR.search(message):
        _logger.warning("Database error answered without its text: %s", message)
        return DATABASE_ERROR_MESSAGE
    return message


class FromMlflow(HokusaiError):
    """An ``MlflowException`` raised under a Hokusai route, answered with the
    status MLflow itself gives its error code (and no SQL)."""

    def __init__(self, exc):
        super().__init__(without_sql(exc.message))
        self.status = exc.get_http_status_code()
        self.error_code = exc.error_code


class Conflict(HokusaiError):
    status = 409
    error_code = "RESOURCE_ALREADY_EXISTS"
    default_detail = "Conflict"


class Unsupported(HokusaiError):
    status = 501
    error_code = "NOT_IMPLEMENTED"
    default_detail = "Not supported by this server's configuration"


class RateLimited(HokusaiError):
    status = 429
    error_code = "REQUEST_LIMIT_EXCEEDED"
    default_detail = "Rate limit exceeded"

    def __init__(self, retry_after: int, headers: Sequence[tuple[str, str]] = (),
                 detail: str | None = None):
        super().__init__(detail, headers={"Retry-After": str(retry_after), **dict(headers)},
                         retry_after=retry_after)


class ServiceUnavailable(HokusaiError):
    status = 503
    error_code = "TEMPORARILY_UNAVAILABLE"
    default_detail = "Service temporarily unavailable"

    def __init__(self, detail: str | None = None, *, retry_after: int):
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class BadGateway(HokusaiError):
    """A model worker failed the call (it crashed, or the model raised)."""

    status = 502
    error_code = "BAD_GATEWAY"
    default_detail = "The model worker failed"


class GatewayTimeout(HokusaiError):
    status = 504
    error_code = "DEADLINE_EXCEEDED"
    default_detail = "The model did not answer in time"


def render(error: HokusaiError, request_id: str | None = None
           ) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and JSON body for an error; shared by every entry point."""
    body = json.dumps(error.body(request_id)).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    headers += list(error.headers.items())
    return error.status, headers, body


class EvaluationRefused(HokusaiError):
    """The model's code could not be evaluated in the sandbox: it failed, was
    stopped at a limit, or answered something that is not predictions."""

    status = 422
    error_code = "EVALUATION_FAILED"
    default_detail = "The model could not be evaluated"
