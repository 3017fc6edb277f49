"""Tenants: with MLflow's workspaces on (``--enable-workspaces``), a key (or a
JWT, through its ``tenant_id`` claim) enters only the workspaces it is bound
to; a request into any other is refused before MLflow sees it. ``*`` binds to
all. An unbound ``admin`` key enters all; an unbound other key only MLflow's
default workspace. The request's workspace is noted for the permission check:
a principal's grants are per workspace.
"""

from __future__ import annotations

import logging

from mlflow_hokusai.errors import WorkspaceRefused
from mlflow_hokusai.pipeline import RequestContext
from mlflow_hokusai.plugins.auth.scopes import ADMIN

_logger = logging.getLogger(__name__)
HEADER = "x-mlflow-workspace"  # mlflow.utils.workspace_utils.WORKSPACE_HEADER_NAME
DEFAULT = "default"  # mlflow.utils.workspace_utils.DEFAULT_WORKSPACE_NAME


def current_workspace() -> str:
    """The workspace of the request being served: MLflow's default one when
    workspaces are off (as MLflow's own registry rows say) or outside a request."""
    from mlflow_hokusai.pipeline import current_context

    context = current_context.get()
    return (context.notes.get("workspace") if context else None) or DEFAULT


def may_enter(principal, workspace: str) -> bool:
    bound = principal.workspaces
    if bound is None:
        return ADMIN in principal.scopes or workspace == DEFAULT
    return "*" in bound or workspace in bound


class TenantStep:
    """Pipeline step after authentication (the principal is known)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled

    def __call__(self, context: RequestContext, allow_io: bool) -> None:
        principal = context.principal
        if not self.enabled or context.public or principal is None:
            return
        workspace = context.request.headers.get(HEADER, "").strip() or DEFAULT
        if not may_enter(principal, workspace):
            _logger.info("Refused %s to %s: not bound to workspace %s",
                         context.request.path, principal.label, workspace)
            context.notes["audit"] = True
            raise WorkspaceRefused(workspace)
        context.notes["workspace"] = workspace
