"""Everything Hokusai takes from MLflow that MLflow does not promise to keep.

This module is the only place that imports a private MLflow name (one with a
leading underscore), spells one of the private environment variables
``mlflow server`` exports to its workers, overrides a private store method, or
knows MLflow's table and column names. tests/core/test_mlflow_compat.py holds the
contract: one assertion per symbol and behaviour used here, each saying what to
port; its fence test fails on any such use elsewhere in the tree. Porting to a
new MLflow minor release means: run ``make test-compat MLFLOW_VERSION=x.y.z``,
mend this file until the contract passes, then widen the pin in setup.cfg.

MLflow's imports stay inside the functions: this module is imported by the
store entry points, which must stay import-light while ``mlflow.tracking``
initialises (a top-level import of the stores is a circular import there).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

# The store mixins below and in plugins/store are put above MLflow's SQLAlchemy
# stores at run time (a class made with type()); for the type checker they
# derive from them, so that their super() calls are checked against MLflow's.
if TYPE_CHECKING:
    from mlflow.store.model_registry.sqlalchemy_store import (
        SqlAlchemyStore as RegistryStoreBase,
    )
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as TrackingStoreBase
else:
    RegistryStoreBase = TrackingStoreBase = object


def __getattr__(name: str):
    # UnsupportedMultipartUpload: what an artifact repository raises when it
    # cannot do multipart uploads (MLflow's handlers then answer as they do for
    # their own repositories). Resolved on first use, for the reason above.
    if name == "UnsupportedMultipartUpload":
        from mlflow.exceptions import _UnsupportedMultipartUploadException

        return _UnsupportedMultipartUploadException
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

# -- private environment variables `mlflow server` exports to its workers ------
# Spelled here rather than imported from mlflow.server.constants: importing
# mlflow.server loads the whole server (Flask app, handlers) into client
# processes that use a hokusai+ URI. The contract test checks each against
# mlflow.server.constants (or mlflow.environment_variables) where MLflow defines it.
BACKEND_STORE_ENV = "_MLFLOW_SERVER_FILE_STORE"
READ_REPLICA_ENV = "_MLFLOW_SERVER_READ_REPLICA_BACKEND_STORE"
ARTIFACT_ROOT_ENV = "_MLFLOW_SERVER_ARTIFACT_ROOT"  # also marks a server process
ARTIFACTS_DESTINATION_ENV = "_MLFLOW_SERVER_ARTIFACT_DESTINATION"
SERVE_ARTIFACTS_ENV = "_MLFLOW_SERVER_SERVE_ARTIFACTS"
SGI_NAME_ENV = "_MLFLOW_SGI_NAME"  # "uvicorn", "gunicorn" or "waitress"
STATIC_PREFIX_ENV = "_MLFLOW_STATIC_PREFIX"  # (mlflow.server.handlers)
# The artifact roots, the proxied destination first.
ARTIFACT_ROOT_ENVS = (ARTIFACTS_DESTINATION_ENV, ARTIFACT_ROOT_ENV)

# -- MLflow's REST API ---------------------------------------------------------------
# POSTs of /api/{2,3}.0/mlflow/ that only read (searches and batch gets): the
# permission table gives them the read scope. MLflow marks none of this itself;
# the contract test checks each is still a POST route of MLflow's Flask app.
READ_ONLY_POSTS = (
    "runs/search", "experiments/search", "experiments/search-datasets", "logged-models/search",
    "registered-models/get-latest-versions", "datasets/search", "issues/search",
    "prompt-optimization/jobs/search", "traces/search", "traces/batchGetInfos",
    "traces/calculate-filter-correlation", "traces/metrics", "artifacts/presigned-download-url",
)

# -- MLflow's schema, as the registry index's triggers read it (plugins/store/triggers.py)
TRIGGER_SCHEMA = {
    "registered_models": ("workspace", "name", "creation_time"),
    "registered_model_tags": ("workspace", "name", "key", "value"),
    "model_versions": ("workspace", "name", "version", "user_id", "creation_time", "run_id",
                       "current_stage"),
    "model_version_tags": ("workspace", "name", "version", "key", "value"),
}


# -- the server's stores ---------------------------------------------------------------
def server_tracking_store():
    """The tracking store the server's handlers use (built once per process)."""
    from mlflow.server import handlers

    return handlers._get_tracking_store()


def server_registry_store():
    from mlflow.server import handlers

    return handlers._get_model_registry_store()


def _store_registries() -> tuple[list, list]:
    """MLflow's tracking and model-registry store registries: the server's
    handlers' and the in-process client's."""
    from mlflow.server import handlers
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    return ([handlers._tracking_store_registry, tracking_utils._tracking_store_registry],
            [handlers._model_registry_store_registry, registry_utils._get_store_registry()])


def register_store_builders(scheme: str, tracking_builder: Callable,
                            registry_builder: Callable) -> None:
    """Make ``scheme`` build these stores in the server's handlers and in the
    in-process client's registries (server code such as model registration
    from ``models:/`` URIs goes through the client)."""
    tracking, model_registry = _store_registries()
    for registry in tracking:
        registry.register(scheme, tracking_builder)
    for registry in model_registry:
        registry.register(scheme, registry_builder)


def snapshot_store_builders() -> Callable[[], None]:
    """A function that puts MLflow's store registries back as they are now. They
    are process-wide: an app built in a process that also uses the MLflow
    client (the tests) would otherwise give every later client its stores."""
    saved = [(registry, dict(registry._registry))
             for registries in _store_registries() for registry in registries]

    def restore() -> None:
        for registry, builders in saved:
            registry._registry.clear()
            registry._registry.update(builders)

    return restore


def registry_query(store, session, model):
    """A query over one of the registry's ORM models with the store's own
    workspace filter applied."""
    return store._get_query(session, model)


# -- private store methods Hokusai extends ------------------------------------------
# Mixed in just above MLflow's SQLAlchemy stores: they route MLflow's private
# hooks to the public-named methods Hokusai's store mixins override.
class TrackingStoreHooks(TrackingStoreBase):
    def hokusai_experiment_clauses(self) -> list:
        """Extra WHERE clauses for MLflow's experiment searches."""
        return []

    def hokusai_filter_experiment_ids(self, session, experiment_ids):
        """The experiment ids a trace search may cover, of those MLflow allowed."""
        return experiment_ids

    def hokusai_setting_tags(self, run_id, tags) -> None:
        """Before set-tags and log-batch write a run's tags (may raise)."""

    def _experiment_where_clauses(self):
        return [*super()._experiment_where_clauses(), *self.hokusai_experiment_clauses()]

    def _filter_experiment_ids(self, session, experiment_ids, *args, **kwargs):
        # MLflow 3.17 added a lifecycle_stage argument; 3.16 has none.
        experiment_ids = super()._filter_experiment_ids(session, experiment_ids, *args, **kwargs)
        return self.hokusai_filter_experiment_ids(session, experiment_ids)

    def _set_tags(self, run_id, tags):
        self.hokusai_setting_tags(run_id, tags)
        return super()._set_tags(run_id, tags)


class RegistryStoreHooks(RegistryStoreBase):
    def hokusai_registry_clauses(self, model) -> list:
        """Extra filters on a registry table MLflow searches (models, versions,
        their tags: each has the model's name)."""
        return []

    def _get_workspace_clauses(self, model):
        return [*super()._get_workspace_clauses(model), *self.hokusai_registry_clauses(model)]


def supply_model_version_user_id(user_id: Callable[[], str | None]) -> None:
    """Every model version MLflow constructs gets ``user_id()`` (when not None)
    as its ``user_id``, in the INSERT MLflow sends anyway. MLflow's own
    create_model_version leaves the column empty."""
    from mlflow.store.model_registry.dbmodels.models import SqlModelVersion
    from sqlalchemy import event

    def supply(target, args, kwargs) -> None:
        value = user_id()
        if value is not None:
            kwargs["user_id"] = value

    event.listen(SqlModelVersion, "init", supply)


# -- artifacts -----------------------------------------------------------------------------
def artifact_repository(uri: str):
    """(repository, path of ``uri`` inside it), as the server's handlers pick
    them: ``mlflow-artifacts:`` URIs map to ``--artifacts-destination`` (the
    server is their proxy), others to the repository of their scheme."""
    from mlflow.server import handlers

    if handlers._is_servable_proxied_run_artifact_root(uri):
        path = handlers._get_proxied_run_artifact_destination_path(uri)
        path = handlers._get_workspace_scoped_repo_path_if_enabled(path)
        return handlers._get_artifact_repo_mlflow_artifacts(), path
    build = getattr(handlers, "_get_artifact_repository_for_uri", None)
    if build is None:
        # MLflow 3.16's handlers build the repository directly (3.17 added a
        # host policy); Hokusai confines versions' sources itself (version_sources).
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        build = get_artifact_repository
    return build(uri), ""


# -- model URIs -------------------------------------------------------------------------------
def model_id_in_uri(uri: str) -> str | None:
    """The logged model id of ``models:/<model id>``, else None."""
    from mlflow.store.artifact.utils.models import _parse_model_id_if_present

    return _parse_model_id_if_present(uri)


def parse_model_uri(uri: str):
    """``models:/`` URI parts, with ``model_id`` or ``name`` (and ``version``,
    ``stage`` or ``alias``) set; raises MlflowException for a malformed URI."""
    from mlflow.store.artifact.utils.models import _parse_model_uri

    return _parse_model_uri(uri)


# -- the client side --------------------------------------------------------------------
def local_user() -> str | None:
    """MLflow's notion of who runs this process (the OS user), for writes made
    outside a server request."""
    from mlflow.tracking.context.default_context import _get_user

    return _get_user()


# -- MLflow's own tables ----------------------------------------------------------------------
def create_or_upgrade_mlflow_tables(engine) -> None:
    """What ``mlflow db upgrade`` does, for an engine (which knows no plugin scheme)."""
    from mlflow.store.db.utils import _all_tables_exist, _initialize_tables, _upgrade_db

    if _all_tables_exist(engine):
        _upgrade_db(engine)
    else:
        _initialize_tables(engine)


# -- the FastAPI side of `mlflow server` ---------------------------------------------------
def drop_native_route(path: str) -> None:
    """Remove MLflow's FastAPI route at ``path`` from its server-info router
    before the app is built, so that the Flask route of the same path answers
    (MLflow's native routes come ahead of the Flask mount)."""
    try:
        from mlflow.server import server_info_api
    except ImportError:  # MLflow 3.16: no native server-info routes, /health is Flask's
        return
    router = server_info_api.server_info_router
    router.routes[:] = [r for r in router.routes if getattr(r, "path", None) != path]


def with_mlflow_security(asgi_app):
    """``asgi_app`` inside the security middlewares MLflow's FastAPI app puts
    around everything it serves (host check, CORS, security headers), configured
    as ``init_fastapi_security`` configures them from MLflow's settings."""
    from mlflow.server.fastapi_security import init_fastapi_security

    class Collected:  # the one method init_fastapi_security calls on its app
        def __init__(self):
            self.middleware: list = []

        def add_middleware(self, cls, **options):
            self.middleware.insert(0, (cls, options))  # as Starlette: the last added is outermost

    collected = Collected()
    init_fastapi_security(collected)  # type: ignore[arg-type]
    for cls, options in reversed(collected.middleware):
        asgi_app = cls(asgi_app, **options)
    return asgi_app
