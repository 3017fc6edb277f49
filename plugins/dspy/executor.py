"""Running registered DSPy programs for the routes: resolve the program
reference, check the inputs against the program's input fields, run it in a
cached sandboxed process with the time limit, record and trace the run."""

from __future__ import annotations

import concurrent.futures
import contextvars
import logging
import tempfile
import time
from pathlib import Path

from mlflow_hokusai.errors import NotFound, ValidationFailed
from mlflow_hokusai.plugins.dspy import files, records
from mlflow_hokusai.plugins.dspy.cache import ProgramCache
from mlflow_hokusai.plugins.dspy.process import ProgramFailed, ProgramProcess, TimedOut

_logger = logging.getLogger(__name__)
MODES = ("normal", "debug")  # debug: the outputs and each predictor call's trace


def parse_program_id(program_id: str) -> tuple[str, str | None]:
    """(name, reference): ``name``, ``name:3`` or ``name@alias``."""
    if "@" in program_id:
        name, alias = program_id.rsplit("@", 1)
        return name, "@" + alias
    name, _, version = program_id.rpartition(":")
    if name and version.isdigit():
        return name, version
    return program_id, None


def input_problems(description: dict, inputs: dict, loc: list) -> list[dict]:
    """Each required input field missing, and each field the program does not take."""
    required = description.get("input_fields") or []
    signatures = description.get("signatures") or [{}]
    known = set(required) | {f["name"] for f in signatures[0].get("input_fields", ())}
    problems = [{"loc": [*loc, field], "msg": f"Field '{field}' is required by the program",
                 "type": "missing"} for field in required if field not in inputs]
    return problems + [{"loc": [*loc, field], "type": "extra_forbidden",
                        "msg": f"Field '{field}' is not an input of the program"}
                       for field in inputs if field not in known]


class Executor:
    def __init__(self, settings, store: records.ExecutionStore, resolver, tracer=None,
                 call_lm=None, sandbox: str = "process"):
        self.settings = settings
        self.store = store
        self.resolver = resolver  # (name, reference) -> version number
        self.tracer = tracer  # (execution, trace, experiment id) -> (trace id, experiment id)
        self.call_lm = call_lm
        self.sandbox = sandbox
        self.root = Path(tempfile.mkdtemp(prefix="hokusai-dspy-programs-"))
        self.cache = ProgramCache(settings.dspy_cache_size, self._start,
                                  settings.dspy_batch_concurrency)

    def _start(self, key) -> ProgramProcess:
        name, version = key
        return ProgramProcess(files.program_copy(self.root, name, version), self.sandbox,
                              memory_mb=self.settings.dspy_memory_mb,
                              load_timeout=self.settings.dspy_load_timeout_seconds,
                              lm_model=self.settings.dspy_lm)

    def program(self, program_id: str) -> tuple[str, int]:
        """(name, version) the reference names now; NotFound unless a DSPy program."""
        name, reference = parse_program_id(program_id)
        version = self.resolver(name, reference)
        if not files.is_program(name, version):
            raise NotFound(f"Version {version} of model '{name}' is not a DSPy program "
                           "(its MLmodel has no dspy flavor)")
        return name, version

    def timeout(self, asked: float | None) -> float:
        return min(asked or self.settings.dspy_timeout_seconds,
                   self.settings.dspy_max_timeout_seconds)

    def check(self, key, inputs: dict, loc: list) -> dict:
        """The program's description; 422 naming each missing input field."""
        try:
            description = self.cache.describe(key)
        except ProgramFailed:
            return {}  # the run itself reports the failure
        problems = input_problems(description, inputs, loc)
        if problems:
            raise ValidationFailed(problems)
        return description

    def run(self, key, inputs: dict, mode: str, timeout: float, principal: str | None,
            experiment_id: str | None = None, batch_id: str | None = None) -> dict:
        """One execution, recorded and traced; never raises for the program's faults."""
        started = time.perf_counter()
        outputs = error = None
        trace: list = []
        try:
            with self.cache.checkout(key) as process:
                answer = process.run(inputs, timeout, self.call_lm)
            outputs, error, trace = answer.get("outputs"), answer.get("error"), \
                answer.get("trace") or []
        except TimedOut:
            error = f"Execution timed out after {timeout:g} s; the program was stopped"
        except ProgramFailed as failed:
            error = str(failed)
        execution = records.Execution(
            records.new_id(), key[0], key[1], mode, error is None, inputs,
            outputs if error is None else None, error, time.perf_counter() - started,
            principal, batch_id)
        metadata = {"program_id": f"{key[0]}:{key[1]}", "version": key[1], "mode": mode,
                    "sandbox": self.sandbox, "timeout": timeout}
        if self.tracer is not None:
            execution.trace_id, metadata["experiment_id"] = self.tracer(execution, trace,
                                                                         experiment_id)
            metadata["trace_id"] = execution.trace_id
        if mode == "debug":
            metadata["trace"] = trace
        self.store.add(execution)
        return {"execution_id": execution.id, "success": execution.success,
                "outputs": execution.outputs, "error": error,
                "execution_time": execution.execution_time, "program_name": key[0],
                "metadata": metadata}

    def batch(self, key, inputs_list: list[dict], mode: str, timeout: float,
              principal: str | None, experiment_id: str | None = None) -> dict:
        """Items run ``HOKUSAI_DSPY_BATCH_CONCURRENCY`` at a time; an item with
        missing inputs, a failing run or a server-side error is a failed
        result, never a failed batch. Items that did not run are not recorded."""
        batch_id = records.new_id()

        def not_run(error: str) -> dict:
            return {"execution_id": None, "success": False, "outputs": None, "error": error,
                    "execution_time": 0.0, "program_name": key[0],
                    "metadata": {"program_id": f"{key[0]}:{key[1]}", "version": key[1]}}

        def item(index: int, inputs: dict) -> dict:
            try:
                self.check(key, inputs, ["body", "inputs_list", index])
                return self.run(key, inputs, mode, timeout, principal, experiment_id,
                                batch_id)
            except ValidationFailed as invalid:
                return not_run("; ".join(p["msg"] for p in invalid.detail))
            except Exception:  # a store or OS failure fails its item, never the batch
                _logger.exception("DSPy batch %s: item %d of %s failed", batch_id, index, key)
                return not_run("The server could not run this item (an internal error, "
                               "logged); it was not recorded")

        workers = min(self.settings.dspy_batch_concurrency, len(inputs_list)) or 1
        with concurrent.futures.ThreadPoolExecutor(workers, "hokusai-dspy-batch") as pool:
            # Each item sees the request's context (its principal owns an
            # experiment a trace creates), as the request's own thread would.
            futures = [pool.submit(contextvars.copy_context().run, item, index, inputs)
                       for index, inputs in enumerate(inputs_list)]
            results = [future.result() for future in futures]
        successful = sum(1 for r in results if r["success"])
        return {"batch_id": batch_id, "total": len(results), "successful": successful,
                "failed": len(results) - successful, "results": results}
