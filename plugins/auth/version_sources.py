"""Where a model version's files come from, judged like any other read.

A version belongs to its registered model, but its files are those of the run,
logged model or artifact location its ``source`` (and ``run_id``, ``model_id``)
point into: without this check a version of one's own model could name
another principal's run and serve its files through ``get-artifact`` or
``/models/.../download``. So creating a version needs READ on every experiment
it points into, and so does reading a version's files (versions made before
this check are covered too).

Attributed: ``runs:/<run>``, ``models:/<logged model id>``, ``models:/<name>/...``
(READ on that registered model; its own files were judged when it was made and
are judged again through its storage location, which MLflow resolves),
``mlflow-artifacts:/<path>`` and locations under the server's artifact roots
(their ``[workspaces/<name>/]<experiment id>/`` prefix; a path under no
experiment has the default permission, as a proxied artifact does). Any other
location (another bucket, a local path outside the roots, ``dbfs:/``) cannot be
attributed to an experiment: only ``admin`` keys may name it. MLflow's prompt
placeholders carry no files and may be named when creating a prompt version.
"""

from __future__ import annotations

import logging
import os
import urllib.parse

from mlflow_hokusai.errors import SourceRefused
from mlflow_hokusai.mlflow_compat import parse_model_uri
from mlflow_hokusai.pipeline import current_context
from mlflow_hokusai.plugins.auth import visibility
from mlflow_hokusai.plugins.auth.scopes import ADMIN

_logger = logging.getLogger(__name__)
_PROMPT_PLACEHOLDERS = ("dummy-source", "prompt-template")  # mlflow.prompt.constants


class Unattributable(Exception):
    pass


def _under_root(uri: str) -> str | None:
    """The path of ``uri`` below one of the server's artifact roots, if it is under one."""
    from mlflow_hokusai.plugins.models.artifacts import server_roots

    scheme = urllib.parse.urlparse(uri).scheme.lower()
    if scheme in ("", "file"):
        local = urllib.parse.urlparse(uri).path if scheme == "file" else uri
        uri = os.path.abspath(local)  # judged where the server will read
    for root in server_roots(local=True):
        if uri.startswith(root):
            return uri[len(root):]
    return None


def _from_source(source: str) -> list[tuple[str, str]]:
    from mlflow.exceptions import MlflowException
    from mlflow.store.artifact.runs_artifact_repo import RunsArtifactRepository

    parsed = urllib.parse.urlparse(source)
    scheme = parsed.scheme.lower()
    try:
        if scheme == "runs":
            return [("run", RunsArtifactRepository.parse_runs_uri(source)[0])]
        if scheme == "models":
            model = parse_model_uri(source)
            return [("logged_model", model.model_id)] if model.model_id else \
                [("registered_model", model.name)]
    except MlflowException:
        raise Unattributable(source) from None
    if scheme == "mlflow-artifacts":
        return [("artifact", parsed.path.lstrip("/"))]
    below = _under_root(source)
    if below is None:
        raise Unattributable(source)
    return [("artifact", below.lstrip("/"))]


def resources(source: str, run_id: str | None = None,
              model_id: str | None = None) -> list[tuple[str, str]]:
    """(kind, id) of everything a version with these fields reads from."""
    found = _from_source(source or "")
    found += [("run", run_id)] if run_id else []
    found += [("logged_model", model_id)] if model_id else []
    return found


def judge(source: str, run_id: str | None = None, model_id: str | None = None, *,
          creating: bool) -> None:
    """Refuse unless the caller may READ everything the version's files come
    from. Outside a request (a ``hokusai+`` client) and for ``admin`` keys: no check."""
    context = current_context.get()
    principal = context.principal if context else None
    authorizer = visibility.authorizer()
    if principal is None or ADMIN in principal.scopes or authorizer is None:
        return
    assert context is not None  # it holds the principal
    if creating and source in _PROMPT_PLACEHOLDERS and not (run_id or model_id):
        return
    try:
        found = resources(source, run_id, model_id)
    except Unattributable:
        context.notes["audit"] = True
        raise SourceRefused(creating, attributable=False) from None
    workspace = context.notes.get("workspace", "")
    for kind, ident in found:
        root = authorizer.ownership.root(kind, ident)
        if root is None:
            continue  # no such run or logged model: nothing of anyone's to read
        held = authorizer.level(principal.username, *root, workspace=workspace)
        if held not in visibility.READABLE:
            context.notes["audit"] = True
            _logger.info("Refused %s %s to %s: version source in %s %s, has %s",
                         context.request.method, context.request.path, principal.label,
                         root[0], root[1], held)
            raise SourceRefused(creating, attributable=True)


def judge_read(uri: str) -> None:
    """At serve time, on read routes only (as ``visibility.hidden``: a write's
    own lookups run inside MLflow's session, and were judged before it)."""
    context = current_context.get()
    if context is not None and context.route is not None and context.route.scope == "read":
        judge(uri, creating=False)

