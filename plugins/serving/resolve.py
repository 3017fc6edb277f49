"""Which registered version a reference names (``3``, ``@champion``, or none:
the ``production`` alias, which a transition to the Production stage sets),
and which deployment serves it."""

from __future__ import annotations

from mlflow.exceptions import MlflowException

from mlflow_hokusai.errors import NotFound
from mlflow_hokusai.plugins.models import registry
from mlflow_hokusai.plugins.serving.store import READY

DEFAULT_ALIAS = "production"


def parse(ref) -> tuple[int | None, str | None]:
    """(version, alias) of ``ref``: an int or digits, ``@alias``, or None."""
    if ref is None or ref == "":
        return None, DEFAULT_ALIAS
    if isinstance(ref, str) and ref.startswith("@") and len(ref) > 1:
        return None, ref[1:]
    try:
        version = int(ref)
    except (TypeError, ValueError):
        raise NotFound(f"Version {ref!r} is neither a number nor an @alias") from None
    if version < 1:
        raise NotFound(f"Version {ref!r} does not exist")
    return version, None


def version_of(name: str, version: int | None, alias: str | None) -> int:
    """The version number the reference names now."""
    if alias is None:
        assert version is not None  # a reference is a number or an alias
        registry.get_version(name, version)  # NotFound when it does not exist
        return version
    try:
        return int(registry.registry_store().get_model_version_by_alias(name, alias).version)
    except MlflowException:
        raise NotFound(f"Registered model {name!r} has no alias {alias!r}") from None


def deployment_for(store, name: str, ref):
    """The deployment serving ``ref`` of ``name``: one of the alias itself
    first, else one running the version it names; ready ones first."""
    version, alias = parse(ref)
    rows = store.list(name)
    chosen = [r for r in rows if alias is not None and r.alias == alias]
    if not chosen:
        number = version_of(name, version, alias)
        chosen = [r for r in rows if r.resolved_version == number or
                  (r.resolved_version is None and r.version == number)]
    if not chosen:
        shown = f"@{alias}" if alias else version
        raise NotFound(f"No deployment serves {name!r} version {shown}: create one with "
                       "POST /api/deployment")
    return sorted(chosen, key=lambda r: r.status != READY)[0]
