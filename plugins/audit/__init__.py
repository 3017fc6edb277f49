"""The audit trail: one record per write request through the server, whatever
its outcome (refused for lack of scope, invalid, failed or done), with who made
it, with which key, the action, the resources it touched, the status and the
request id. Read back with ``GET /api/audit`` (``admin``).

Requests without a valid credential (401) are not recorded: the gate's metrics
count them, and anyone could fill the table with them. Rate-limited ones (429)
are counted by metrics too, for the same reason. A record is durable before
its request's answer leaves the server (recorder.py, spool.py).
"""

from __future__ import annotations

import functools
import logging
import time

import flask

from mlflow_hokusai.pipeline import current_context
from mlflow_hokusai.plugins.audit import api, resources, spool
from mlflow_hokusai.plugins.audit.recorder import AuditRecorder
from mlflow_hokusai.plugins.auth.scopes import ADMIN

_UNRECORDED = {401, 429}
_logger = logging.getLogger(__name__)


def _is_write(context) -> bool:
    # Writes, and any request a permission check refused (notes["audit"]).
    return context.route is not None and (context.route.audited or "audit" in context.notes)


def init_app(flask_app, hokusai) -> None:
    hokusai.routes.add_rule({"GET", "HEAD"}, r"/api/audit", ADMIN)
    flask_app.register_blueprint(api.blueprint)
    if not hokusai.settings.audit_enabled:
        return
    directory = spool.directory_for(hokusai.database_uri, hokusai.settings.audit_spool_dir)
    recorder = AuditRecorder(hokusai.engine, directory)

    @flask_app.after_request
    def note_resources(response):
        context = current_context.get()
        if context is not None and _is_write(context):
            try:
                context.notes["audit_resources"] = resources.from_flask(flask.request, response)
            except Exception:  # the record must never fail the request
                _logger.exception("Audit: resources of %s not read", context.request.path)
        return response

    def before_answer(context, status):
        """The record of a write, made durable before its answer is sent: a
        client never sees a write acknowledged whose record could still be lost."""
        request = context.request
        principal = context.principal
        if principal is None or status in _UNRECORDED or not _is_write(context):
            return None
        return functools.partial(recorder.record, {
            "time": int(time.time() * 1000), "request_id": context.request_id,
            "client_request_id": context.client_request_id,
            "principal": principal.username, "key_id": principal.key_id,
            "action": f"{request.method} {context.route.template}",
            "path": request.path, "status": status,
            **context.notes.get("audit_resources", {})})

    hokusai.pipeline.before_answer(before_answer)
    hokusai.pipeline.on_shutdown(recorder.close)
    hokusai.audit = recorder
