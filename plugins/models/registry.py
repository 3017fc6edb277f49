"""Registry reads and writes for the model management API.

Decision: the views use the server's own stores (``mlflow.server.handlers``),
not an ``MlflowClient`` over HTTP: no second trip through the gate, the same
database pools, workspace context and store plugins (``hokusai+`` schemes) as
MLflow's own handlers, and MLflow's errors arrive as ``MlflowException`` with
their status. The private helpers used here are in mlflow_hokusai/mlflow_compat.py.
"""

from __future__ import annotations

import datetime

from mlflow.entities.model_registry import ModelVersionTag
from mlflow.entities.model_registry.prompt_version import IS_PROMPT_TAG_KEY
from mlflow.exceptions import MlflowException

from mlflow_hokusai import mlflow_compat
from mlflow_hokusai.errors import NotFound
from mlflow_hokusai.plugins.auth import visibility
from mlflow_hokusai.plugins.store.refusals import NameTaken

STAGE_ALIASES = ("staging", "production", "archived")


registry_store = mlflow_compat.server_registry_store
tracking_store = mlflow_compat.server_tracking_store


def when(millis: int | None) -> datetime.datetime | None:
    if millis is None:
        return None
    return datetime.datetime.fromtimestamp(millis / 1000, tz=datetime.timezone.utc)


def ensure_model(store, name: str, description: str | None = None) -> bool:
    """Create the registered model unless this workspace has it; True if this
    call made it. A name another workspace holds is refused (refusals.NameTaken)."""
    try:
        store.create_registered_model(name, description=description)
        return True
    except NameTaken:
        raise
    except MlflowException as exc:
        if exc.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
            raise
        return False


def _missing(exc: MlflowException) -> bool:
    return exc.error_code == "RESOURCE_DOES_NOT_EXIST"


def get_version(name: str, version: int):
    try:
        return registry_store().get_model_version(name, str(version))
    except MlflowException as exc:
        if _missing(exc):
            raise NotFound(f"Model not found: {name}:{version}") from None
        raise


def logged_model_id(mv) -> str | None:
    """The MLflow 3 logged model behind a version (also when only its source
    names it, as for versions the MLflow client registered)."""

    return getattr(mv, "model_id", None) or mlflow_compat.model_id_in_uri(mv.source or "")


def version_out(mv) -> dict:
    return {"name": mv.name, "version": int(mv.version), "status": mv.status,
            "stage": mv.current_stage, "aliases": sorted(mv.aliases or ()),
            "description": mv.description or None, "tags": dict(mv.tags or {}),
            "run_id": mv.run_id or None, "source": mv.source,
            "logged_model_id": logged_model_id(mv),
            "created_at": when(mv.creation_timestamp),
            "last_updated_at": when(mv.last_updated_timestamp)}


def list_models(name: str | None, max_results: int, page_token: str | None) -> dict:
    """The latest version of each registered model, by name."""
    filter_string = f"name ILIKE '%{name}%'" if name else None
    page = registry_store().search_registered_models(
        filter_string=filter_string, max_results=max_results, order_by=["name ASC"],
        page_token=page_token)
    models = []
    for model in page:
        # latest_versions holds the latest of each stage; the newest of those
        # is the newest version overall.
        latest = max(model.latest_versions or (), key=lambda mv: int(mv.version), default=None)
        models.append({
            "name": model.name,
            "version": str(latest.version) if latest else None,
            "status": latest.status if latest else None,
            "created_at": when(latest.creation_timestamp if latest else
                               model.creation_timestamp),
            "tags": dict(latest.tags or {}) if latest else {}})
    return {"models": models, "next_page_token": page.token}


def update(name: str, version: int, description: str | None, tags: dict[str, str | None]):
    get_version(name, version)
    store = registry_store()
    if description is not None:
        store.update_model_version(name, str(version), description)
    for key, value in tags.items():
        if value is None:
            store.delete_model_version_tag(name, str(version), key)
        else:
            store.set_model_version_tag(name, str(version), ModelVersionTag(key, value))
    return get_version(name, version)


def set_tag(name: str, version: int, key: str, value: str) -> None:
    update(name, version, None, {key: value})


def delete_tag(name: str, version: int, key: str) -> None:
    update(name, version, None, {key: None})


def delete(name: str, version: int) -> None:
    get_version(name, version)
    registry_store().delete_model_version(name, str(version))


def transition(name: str, version: int, stage: str, archive_existing: bool):
    """Move the version to ``stage`` and, since MLflow 3 prefers aliases, point
    the alias of the same name (lower case) at it; stage aliases it carried for
    another stage are removed. ``None`` sets no alias."""
    current = get_version(name, version)
    store = registry_store()
    store.transition_model_version_stage(name, str(version), stage, archive_existing)
    alias = stage.lower()
    for old in current.aliases or ():
        if old in STAGE_ALIASES and old != alias:
            store.delete_registered_model_alias(name, old)
    if alias in STAGE_ALIASES:
        store.set_registered_model_alias(name, alias, str(version))
    return get_version(name, version)


def production_versions() -> list[dict]:
    """Every version in the Production stage or carrying the ``production``
    alias: two indexed queries on the SQL store (its workspace filter kept),
    rather than a scan of every version."""
    from mlflow.store.model_registry.dbmodels.models import SqlModelVersion, SqlRegisteredModelAlias

    store = registry_store()
    with store.ManagedSessionMaker() as session, visibility.searching():
        # Only the models the caller may read (plugins/auth/visibility.py).
        staged = mlflow_compat.registry_query(store, session, SqlModelVersion).filter(
            SqlModelVersion.current_stage == "Production",
            *visibility.model_filters(SqlModelVersion.name)).all()
        aliased = mlflow_compat.registry_query(store, session, SqlRegisteredModelAlias).filter(
            SqlRegisteredModelAlias.alias == "production",
            *visibility.model_filters(SqlRegisteredModelAlias.name)).all()
        keys = sorted({(v.name, v.version) for v in staged} |
                      {(a.name, a.version) for a in aliased})
    versions = [get_version(name, version) for name, version in keys]
    # Prompts live in the registry too (and take aliases); they are not models.
    versions = [mv for mv in versions if (mv.tags or {}).get(IS_PROMPT_TAG_KEY) != "true"]
    return [{"name": mv.name, "version": int(mv.version), "stage": mv.current_stage,
             "aliases": sorted(mv.aliases or ()),
             "deployed_at": when(mv.last_updated_timestamp)} for mv in versions]
