"""Registered DSPy programs (issue 19): list them, run them once or in
batches, record every execution, and trace it with MLflow Tracing.

Program code is untrusted: a program is loaded and run only in a sandboxed
process of its own (``process``, started through plugins/sandbox/launch.py in
``HOKUSAI_SANDBOX_MODE``), kept per server worker in a bounded LRU cache.
Modules: ``files`` (is a version a program; its files), ``runner`` (inside the
sandbox), ``process`` (one sandboxed program), ``cache``, ``records``,
``executor``, ``lm`` (the server's LM the programs call), ``tracing``,
``schemas`` and ``views``. ``dspy`` itself is imported only by the runner.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow_hokusai.plugins.dspy.executor import Executor

PUBLIC_HEALTH = "/api/v1/dspy/health"


@dataclasses.dataclass
class DspyService:
    settings: object
    store: object  # records.ExecutionStore
    executor: Executor | None  # None without the dspy package
    health: object  # plugins.health.checks.Cached of the public answer

    def resolve(self, program_id: str, level: str) -> tuple[str, int]:
        from mlflow_hokusai.plugins.auth.authorize import require
        from mlflow_hokusai.plugins.dspy.executor import parse_program_id

        name, _ = parse_program_id(program_id)
        require("registered_model", name, level)
        assert self.executor is not None  # the routes answer 501 before, without it
        return self.executor.program(program_id)

    def programs(self, max_results: int, page_token: str | None, readable) -> dict:
        """One entry per readable registered model whose default version is a
        DSPy program; a page may hold fewer than ``max_results``."""
        from mlflow_hokusai.errors import HokusaiError
        from mlflow_hokusai.plugins.dspy import files
        from mlflow_hokusai.plugins.dspy.process import ProgramFailed
        from mlflow_hokusai.plugins.models import registry

        assert self.executor is not None  # the routes answer 501 before, without it
        page = registry.registry_store().search_registered_models(
            max_results=max_results, order_by=["name ASC"], page_token=page_token)
        programs = []
        for model in page:
            if not readable(model.name):
                continue
            try:
                version = default_version(model.name, None)
                if not files.is_program(model.name, version):
                    continue
                description = self.executor.cache.describe((model.name, version))
            except (HokusaiError, ProgramFailed):
                continue  # no version, or one that cannot load: not listed
            programs.append({"program_id": model.name, "name": model.name,
                             "version": version, **description,
                             "description": model.description or
                             description.get("description")})
        return {"programs": programs, "next_page_token": page.token}


def default_version(name: str, reference: str | None) -> int:
    """``3``, ``@alias``, or by default the ``production`` alias (Hokusai's
    stage transition sets it), else the version in the Production stage (set
    through MLflow's own API, which moves no alias), else the latest version."""
    from mlflow.exceptions import MlflowException

    from mlflow_hokusai.errors import NotFound
    from mlflow_hokusai.plugins.models import registry
    from mlflow_hokusai.plugins.serving import resolve

    if reference is not None:
        return resolve.version_of(name, *resolve.parse(reference))
    try:
        return resolve.version_of(name, None, resolve.DEFAULT_ALIAS)
    except NotFound:
        pass
    try:
        production = registry.registry_store().get_latest_versions(name, ["Production"])
    except MlflowException:
        production = []  # no such model: the search below says so
    if production:
        return int(production[0].version)
    versions = registry.registry_store().search_model_versions(
        filter_string=f"name = '{name.replace(chr(39), chr(39) * 2)}'", max_results=1,
        order_by=["version_number DESC"])
    if not versions:
        raise NotFound(f"Registered model {name!r} has no versions")
    return int(versions[0].version)


def dspy_installed() -> bool:
    return importlib.util.find_spec("dspy") is not None


def init_app(flask_app, hokusai) -> None:
    from mlflow_hokusai.plugins.auth.scopes import ADMIN, READ
    from mlflow_hokusai.plugins.dspy import lm, records, tracing
    from mlflow_hokusai.plugins.dspy.executor import Executor
    from mlflow_hokusai.plugins.dspy.views import blueprint
    from mlflow_hokusai.plugins.health.checks import Cached
    from mlflow_hokusai.plugins.sandbox import launch

    settings = hokusai.settings
    store = records.ExecutionStore(hokusai.engine, settings.dspy_execution_retention_days)
    executor = None
    if dspy_installed():
        executor = Executor(settings, store, default_version, tracer=tracing.Tracer(settings),
                            call_lm=lm.caller(settings), sandbox=launch.mode(settings.sandbox_mode))

    def public_health():
        statistics = store.statistics()
        return {"status": "healthy", "total_executions": statistics["total_executions"],
                "success_rate": statistics["success_rate"]}

    hokusai.reserved_experiments.add(settings.dspy_experiment)
    hokusai.dspy = DspyService(settings, store, executor,
                               Cached(public_health, settings.health_cache_seconds))
    # Running a program only reads it (the version is checked in the view).
    hokusai.routes.add_rule({"POST"}, r"/api/v1/dspy/execute(?:/batch)?", READ)
    hokusai.routes.add_rule({"POST"}, r"/api/v1/dspy/cache/clear", ADMIN)
    hokusai.routes.add_public_path(PUBLIC_HEALTH)
    flask_app.register_blueprint(blueprint)
