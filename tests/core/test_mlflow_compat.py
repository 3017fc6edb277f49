"""The contract with MLflow's internals (mlflow_hokusai/mlflow_compat.py), and the
fence that keeps them in that one module.

Contract: one test per thing the module relies on, each failing with a message
that says what to port. `make test-compat MLFLOW_VERSION=x.y.z` runs these
against another MLflow release. Fence: a scan of the source tree's syntax that
fails, naming file:line, on any private MLflow name used outside the module.
"""

from __future__ import annotations

import ast
import inspect
import os
import re
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from mlflow_hokusai import mlflow_compat as compat

ROOT = Path(__file__).resolve().parents[2]
COMPAT = ROOT / "mlflow_hokusai" / "mlflow_compat.py"
PORT = "port mlflow_hokusai/mlflow_compat.py"


# -- a throwaway SQLite database with MLflow's tables, and stores over it -------
@pytest.fixture(scope="module")
def database_uri(tmp_path_factory):
    path = tmp_path_factory.mktemp("compat") / "mlflow.db"
    uri = f"sqlite:///{path}"
    engine = sa.create_engine(uri)
    compat.create_or_upgrade_mlflow_tables(engine)  # also the contract of that function
    engine.dispose()
    return uri


def _at_least(version: str) -> bool:
    import mlflow
    from packaging.version import Version

    return Version(mlflow.__version__) >= Version(version)


class _NoHooks:
    pass


def _tracking_store(uri, hooks):
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    cls = type("ContractTrackingStore", (hooks, compat.TrackingStoreHooks, SqlAlchemyStore), {})
    return cls(uri, str(Path(uri[len("sqlite:///"):]).parent / "artifacts"))


def _registry_store(uri, hooks=_NoHooks):
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore

    cls = type("ContractRegistryStore", (hooks, compat.RegistryStoreHooks, SqlAlchemyStore), {})
    return cls(uri)


# -- environment variables -----------------------------------------------------------
def test_server_environment_variable_names_are_mlflows():
    from mlflow import environment_variables
    from mlflow.server import constants, handlers

    expected = {
        "BACKEND_STORE_ENV": constants.BACKEND_STORE_URI_ENV_VAR,
        "READ_REPLICA_ENV": constants.READ_REPLICA_BACKEND_STORE_URI_ENV_VAR,
        "ARTIFACT_ROOT_ENV": constants.ARTIFACT_ROOT_ENV_VAR,
        "ARTIFACTS_DESTINATION_ENV": constants.ARTIFACTS_DESTINATION_ENV_VAR,
        "SERVE_ARTIFACTS_ENV": constants.SERVE_ARTIFACTS_ENV_VAR,
        "SGI_NAME_ENV": environment_variables._MLFLOW_SGI_NAME.name,
        "STATIC_PREFIX_ENV": handlers.STATIC_PREFIX_ENV_VAR,
    }
    for name, value in expected.items():
        assert getattr(compat, name) == value, (
            f"MLflow now exports {value!r} where compat.{name} says "
            f"{getattr(compat, name)!r}: {PORT}")


# -- the REST API ---------------------------------------------------------------------
def test_read_only_posts_are_mlflow_post_routes():
    from mlflow.server import app

    posts = {rule.rule for rule in app.url_map.iter_rules() if "POST" in rule.methods}
    for path in compat.READ_ONLY_POSTS:
        assert any(route.endswith("/mlflow/" + path) for route in posts), \
            f"MLflow no longer has POST .../mlflow/{path}: drop or rename it in READ_ONLY_POSTS"


def test_new_search_posts_are_classified():
    """A POST MLflow adds that only searches must join READ_ONLY_POSTS (or be
    judged a write on purpose): otherwise read-scoped keys cannot use it."""
    from mlflow.server import app

    family = re.compile(r"^/api/[23]\.0/?mlflow/(.+)$")
    searches = {match.group(1) for rule in app.url_map.iter_rules() if "POST" in rule.methods
                if (match := family.match(rule.rule)) and match.group(1).endswith("/search")}
    missing = searches - set(compat.READ_ONLY_POSTS) - {"gateway/secrets/search"}
    assert not missing, \
        f"MLflow has new search POSTs {sorted(missing)}: add them to READ_ONLY_POSTS"


# -- the schema the triggers read -----------------------------------------------------------
def test_trigger_schema_is_mlflows(database_uri):
    inspector = sa.inspect(sa.create_engine(database_uri))
    for table, columns in compat.TRIGGER_SCHEMA.items():
        assert inspector.has_table(table), \
            f"MLflow's table {table} is gone: port plugins/store/triggers.py and TRIGGER_SCHEMA"
        have = {column["name"] for column in inspector.get_columns(table)}
        assert set(columns) <= have, (f"{table} lacks {set(columns) - have}: port "
                                      "plugins/store/triggers.py and TRIGGER_SCHEMA")


def test_create_or_upgrade_runs_on_existing_tables(database_uri):
    engine = sa.create_engine(database_uri)
    compat.create_or_upgrade_mlflow_tables(engine)  # the upgrade path: a no-op at head
    assert sa.inspect(engine).has_table("model_versions"), f"MLflow's tables vanished: {PORT}"


# -- stores -------------------------------------------------------------------------------------
def test_server_store_getters_exist():
    from mlflow.server import handlers

    for name in ("_get_tracking_store", "_get_model_registry_store"):
        assert callable(getattr(handlers, name, None)), \
            f"mlflow.server.handlers.{name} is gone: port server_*_store in {PORT}"


def test_store_builders_reach_the_server_and_the_client():
    from mlflow.server import handlers
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    scheme = f"contract{uuid.uuid4().hex[:6]}"

    def tracking(**kwargs):
        return "tracking"

    def registry(**kwargs):
        return "registry"

    compat.register_store_builders(scheme, tracking, registry)
    uri = f"{scheme}://somewhere"
    for store_registry, builder in ((handlers._tracking_store_registry, tracking),
                                    (tracking_utils._tracking_store_registry, tracking),
                                    (handlers._model_registry_store_registry, registry),
                                    (registry_utils._get_store_registry(), registry)):
        assert store_registry.get_store_builder(uri) is builder, \
            f"A store registry no longer resolves a registered scheme: {PORT}"


def test_session_maker_takes_read_only(database_uri):
    store = _registry_store(database_uri)
    parameters = inspect.signature(store.ManagedSessionMaker).parameters
    assert "read_only" in parameters, \
        "ManagedSessionMaker lost read_only=: port plugins/store/transactions.py"
    with store.ManagedSessionMaker(read_only=False) as session:
        session.execute(sa.text("SELECT 1"))


def test_tracking_hooks_are_called_by_mlflows_searches(database_uri):
    from mlflow.entities import RunTag

    seen_tags = []

    class Hooks:
        def hokusai_experiment_clauses(self):
            return [sa.false()]

        def hokusai_filter_experiment_ids(self, session, experiment_ids):
            return []

        def hokusai_setting_tags(self, run_id, tags):
            seen_tags.extend(tags)

    store = _tracking_store(database_uri, Hooks)
    plain = _tracking_store(database_uri, _NoHooks)
    experiment = plain.create_experiment(f"contract-{uuid.uuid4().hex[:6]}")
    assert plain.search_experiments(), "search_experiments finds nothing on its own"
    assert store.search_experiments() == [], \
        "_experiment_where_clauses no longer filters search_experiments: port TrackingStoreHooks"
    traces, _ = store.search_traces(locations=[experiment]) if "locations" in \
        inspect.signature(store.search_traces).parameters else \
        store.search_traces(experiment_ids=[experiment])
    assert traces == []
    assert inspect.signature(plain._filter_experiment_ids).parameters.keys() >= \
        {"session", "experiment_ids"}, "_filter_experiment_ids changed: port TrackingStoreHooks"
    run = plain.create_run(experiment, "u", 0, [], "r")
    store.set_tags = None  # only the batch path is the hook's
    store.log_batch(run.info.run_id, metrics=[], params=[], tags=[RunTag("k", "v")])
    assert [tag.key for tag in seen_tags] == ["k"], \
        "log_batch no longer writes tags through _set_tags: port TrackingStoreHooks"


def test_registry_hook_filters_mlflows_searches(database_uri):
    class Hidden:
        def hokusai_registry_clauses(self, model):
            return [sa.false()] if getattr(model, "name", None) is not None else []

    plain, hidden = _registry_store(database_uri), _registry_store(database_uri, Hidden)
    name = f"contract-{uuid.uuid4().hex[:6]}"
    plain.create_registered_model(name)
    assert [m.name for m in plain.search_registered_models(f"name = '{name}'")] == [name]
    assert list(hidden.search_registered_models(f"name = '{name}'")) == [], \
        "_get_workspace_clauses no longer filters registry searches: port RegistryStoreHooks"


def test_registry_query_reads_through_the_store(database_uri):
    from mlflow.store.model_registry.dbmodels.models import SqlRegisteredModel

    store = _registry_store(database_uri)
    name = f"contract-{uuid.uuid4().hex[:6]}"
    store.create_registered_model(name)
    with store.ManagedSessionMaker() as session:
        names = [m.name for m in compat.registry_query(store, session, SqlRegisteredModel)]
    assert name in names, f"The registry store's _get_query is gone or changed: {PORT}"


def test_model_versions_get_the_supplied_user_id(database_uri):
    import contextvars

    user = contextvars.ContextVar("contract_user", default=None)
    compat.supply_model_version_user_id(user.get)
    store = _registry_store(database_uri)
    name = f"contract-{uuid.uuid4().hex[:6]}"
    store.create_registered_model(name)
    token = user.set("contract-user")
    try:
        version = store.create_model_version(name, "s3://bucket/model")
    finally:
        user.reset(token)
    assert version.user_id == "contract-user", (
        "SqlModelVersion's init hook no longer reaches the INSERT: "
        "port supply_model_version_user_id")
    assert store.create_model_version(name, "s3://bucket/model").user_id is None, \
        "MLflow now fills model_versions.user_id itself: revisit plugins/store/owners.py"


# -- artifacts -------------------------------------------------------------------------------
def test_artifact_repository_helpers(tmp_path, monkeypatch):
    from mlflow.server import handlers

    monkeypatch.setenv(compat.SERVE_ARTIFACTS_ENV, "true")  # as `mlflow server` exports it

    for name in ("_is_servable_proxied_run_artifact_root",
                 "_get_proxied_run_artifact_destination_path",
                 "_get_workspace_scoped_repo_path_if_enabled",
                 "_get_artifact_repo_mlflow_artifacts",
                 *(("_get_artifact_repository_for_uri",) if _at_least("3.17") else ())):
        assert callable(getattr(handlers, name, None)), \
            f"mlflow.server.handlers.{name} is gone: port artifact_repository"
    assert handlers._is_servable_proxied_run_artifact_root("mlflow-artifacts:/1/abc")
    assert handlers._get_proxied_run_artifact_destination_path(
        "mlflow-artifacts:/1/abc/model") == "1/abc/model", "Proxied paths read differently: port"
    repository, path = compat.artifact_repository(tmp_path.as_uri())
    assert path == "" and hasattr(repository, "list_artifacts"), \
        f"A plain URI no longer gives its repository: {PORT}"


def test_unsupported_multipart_upload_is_what_mlflow_catches():
    from mlflow.server import handlers

    assert issubclass(compat.UnsupportedMultipartUpload, Exception)
    assert compat.UnsupportedMultipartUpload.__name__ in inspect.getsource(handlers), \
        "MLflow's handlers no longer catch this exception: port the multipart answer"


# -- model URIs and the client ---------------------------------------------------------------
def test_model_uri_parsers():
    model_id = "m-" + "0" * 32
    assert compat.model_id_in_uri(f"models:/{model_id}") == model_id, \
        f"_parse_model_id_if_present reads model ids differently: {PORT}"
    assert compat.model_id_in_uri("runs:/abc/model") is None
    parsed = compat.parse_model_uri("models:/my-model/3")
    assert (parsed.name, str(parsed.version), parsed.model_id) == ("my-model", "3", None), \
        f"_parse_model_uri answers differently: {PORT} and plugins/auth/version_sources.py"
    assert compat.parse_model_uri("models:/my-model@champion").alias == "champion"


def test_local_user():
    assert isinstance(compat.local_user(), str), \
        f"default_context._get_user is gone or changed: {PORT}"


# -- the FastAPI app ------------------------------------------------------------------------
def test_mlflows_security_middlewares_wrap_a_bare_asgi_app():
    from mlflow.server.fastapi_security import HostValidationMiddleware, SecurityHeadersMiddleware

    async def bare(scope, receive, send):
        pass

    layers, app = [], compat.with_mlflow_security(bare)
    while app is not bare:
        layers.append(type(app))
        app = app.app
    assert SecurityHeadersMiddleware in layers and HostValidationMiddleware in layers, \
        f"init_fastapi_security adds other middlewares, or not through add_middleware: {PORT}"


def test_server_info_router_holds_a_health_route():
    if not _at_least("3.17"):
        from mlflow.server import app

        assert "/health" in {rule.rule for rule in app.url_map.iter_rules()}
        compat.drop_native_route("/health")  # nothing to drop before 3.17
        return
    from mlflow.server import server_info_api

    router = server_info_api.server_info_router
    assert all(hasattr(route, "path") for route in router.routes)
    assert '"/health"' in inspect.getsource(server_info_api), \
        "MLflow's native /health moved: port drop_native_route's caller (plugins/health)"
    before = list(router.routes)
    compat.drop_native_route("/no-such-route")
    assert router.routes == before


# -- the fence -------------------------------------------------------------------------------------
SCANNED = ("mlflow_hokusai", "plugins", "benchmarks")
PRIVATE_ENV = re.compile(r"^_MLFLOW_[A-Z0-9_]+$")


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _mlflow_private_members() -> tuple[set[str], set[str]]:
    """(private methods of the MLflow stores Hokusai extends: overriding or
    calling one is a use of MLflow's internals; private fields of the entities
    it returns: assigning one is). Reading a field is not judged: names such as
    ``_name`` or ``_version`` are too common to tell apart."""
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as Registry
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as Tracking

    methods = {name for cls in (Registry, Tracking) for name in dir(cls)
               if _private(name) and callable(getattr(cls, name))}
    fields = {name for name in vars(ModelVersion("name", "1", 0)) if _private(name)}
    return methods, fields


class _Fence(ast.NodeVisitor):
    def __init__(self, members: tuple[set[str], set[str]]):
        self.methods, self.fields = members
        self.mlflow_names: set[str] = set()  # names bound to MLflow modules or objects
        self.found: list[tuple[int, str]] = []

    def visit_ImportFrom(self, node):
        module = node.module or ""
        if node.level == 0 and module.split(".")[0] == "mlflow":
            if any(_private(part) for part in module.split(".")):
                self.found.append((node.lineno, f"from {module} import"))
            for alias in node.names:
                if _private(alias.name):
                    self.found.append((node.lineno, f"from {module} import {alias.name}"))
                self.mlflow_names.add(alias.asname or alias.name)

    def visit_Import(self, node):
        for alias in node.names:
            parts = alias.name.split(".")
            if parts[0] == "mlflow":
                if any(_private(part) for part in parts):
                    self.found.append((node.lineno, f"import {alias.name}"))
                self.mlflow_names.add(alias.asname or "mlflow")

    def visit_Attribute(self, node):
        if _private(node.attr):
            base = node.value
            while isinstance(base, ast.Attribute):
                base = base.value
            if (isinstance(base, ast.Name) and base.id in self.mlflow_names) or \
                    node.attr in self.methods or \
                    (node.attr in self.fields and isinstance(node.ctx, ast.Store)):
                self.found.append((node.lineno, f".{node.attr}"))
        self.generic_visit(node)

    def visit_ClassDef(self, node):
        for item in node.body:
            if isinstance(item, ast.FunctionDef) and item.name in self.methods:
                self.found.append((item.lineno, f"def {item.name} (overrides MLflow's)"))
        self.generic_visit(node)

    def visit_Constant(self, node):
        if isinstance(node.value, str) and PRIVATE_ENV.match(node.value):
            self.found.append((node.lineno, repr(node.value)))


def _scan(path: Path, members: tuple[set[str], set[str]]) -> list[tuple[int, str]]:
    fence = _Fence(members)
    tree = ast.parse(path.read_text(), str(path))
    # Imports first: a name is MLflow's wherever in the module it was imported.
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            fence.visit(node)
    fence.found.clear()
    fence.visit(tree)
    return fence.found


def test_the_fence_sees_private_uses(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("from mlflow.server import handlers\n"
                      "from mlflow.store.artifact.utils.models import _parse_model_uri\n"
                      "import mlflow.tracking._model_registry.utils as u\n"
                      "handlers._get_tracking_store()\n"
                      "ENV = '_MLFLOW_SERVER_FILE_STORE'\n"
                      "class S:\n    def _set_tags(self): pass\n"
                      "def f(mv):\n    mv._user_id = 1\n"
                      "PUBLIC = handlers.get_endpoints\n")
    lines = sorted(line for line, _ in _scan(sample, _mlflow_private_members()))
    assert lines == [2, 3, 4, 5, 7, 9]


def test_private_mlflow_names_only_in_the_compat_module():
    members = _mlflow_private_members()
    offenders = []
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            if path == COMPAT or ".venv" in path.parts:
                continue
            offenders += [f"{path.relative_to(ROOT)}:{line}: {what}"
                          for line, what in _scan(path, members)]
    assert not offenders, ("Private MLflow names outside mlflow_hokusai/mlflow_compat.py "
                           "(put them behind a function there):\n" + "\n".join(offenders))


def test_the_compat_module_is_where_they_are():
    """The fence would be vacuous if the scan missed the module's own uses."""
    assert len(_scan(COMPAT, _mlflow_private_members())) > 10
    assert os.path.exists(COMPAT)
