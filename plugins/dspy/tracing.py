"""An MLflow trace per execution, written by the server into its own tracking
store (the program's process has no store access): a root span with the
program's inputs and outputs (or error), and a child span per predictor call
the program made, as DSPy recorded them. The spans are made with a private
OpenTelemetry tracer provider, so nothing reaches MLflow's global tracing
state (the server's own fluent tracing, or another thread's trace)."""

from __future__ import annotations

import contextlib
import logging
import threading
import time

_logger = logging.getLogger(__name__)
SPAN_CHAIN, SPAN_LLM = "CHAIN", "LLM"


class SharedExperimentOwned(Exception):
    """The shared trace experiment has an owner other than the server."""


class Tracer:
    def __init__(self, settings):
        self.settings = settings
        self.lock = threading.Lock()
        self.experiments: dict[str, str] = {}
        self._provider = None

    def _tracer(self):
        if self._provider is None:
            from opentelemetry.sdk.trace import TracerProvider

            self._provider = TracerProvider()
        return self._provider.get_tracer("mlflow_hokusai.dspy")

    def experiment_id(self, name: str) -> str:
        """The experiment's id, created when missing: by the caller when the
        request named it (views.py checked the caller may create one). The
        shared experiment (``HOKUSAI_DSPY_EXPERIMENT``) is the server's, looked
        up and written as the server (``__call__``)."""
        from mlflow_hokusai.plugins.models.registry import tracking_store

        with self.lock:
            if name not in self.experiments:
                store = tracking_store()
                experiment = store.get_experiment_by_name(name)
                if name == self.settings.dspy_experiment:
                    self.experiments[name] = self._shared(store, experiment)
                elif experiment is not None:
                    self.experiments[name] = experiment.experiment_id
                else:
                    self.experiments[name] = store.create_experiment(name)
            return self.experiments[name]

    def _shared(self, store, experiment) -> str:
        """The server's experiment, created without an owner when missing (the
        name is reserved: plugins/store/reserved.py). One that has an owner was
        created by a caller before the name was reserved: that caller would
        MANAGE everyone's traces, so nothing is written there."""
        from mlflow.exceptions import MlflowException

        from mlflow_hokusai.plugins.store import reader

        name = self.settings.dspy_experiment
        if experiment is None:
            try:
                return store.create_experiment(name)
            except MlflowException:  # another server worker created it just now
                experiment = store.get_experiment_by_name(name)
                if experiment is None:
                    raise
        with store.ManagedSessionMaker() as session:
            row = reader.owner(session, "experiment", experiment.experiment_id)
        if row is not None and (row["owner"] is not None or row["owner_key_id"] is not None):
            raise SharedExperimentOwned(
                f"Experiment {name!r} ({experiment.experiment_id}) is owned by "
                f"{row['owner']!r} (key {row['owner_key_id']}), not by the server: DSPy "
                "traces are not written until that owner row is removed (hokusai_owners) "
                "or HOKUSAI_DSPY_EXPERIMENT names another experiment")
        return experiment.experiment_id

    def __call__(self, execution, trace: list, experiment: str | None):
        """(trace id, experiment id); (None, None) when writing it fails (an
        execution is never failed by its trace)."""
        from mlflow_hokusai.plugins.store.owners import as_server

        name = experiment or self.settings.dspy_experiment
        try:
            # The shared experiment is written as the server: a caller who may
            # not read it (HOKUSAI_DEFAULT_PERMISSION=NO_PERMISSIONS) still runs
            # programs, and their traces are kept.
            with as_server() if name == self.settings.dspy_experiment else \
                    contextlib.nullcontext():
                return self._write(execution, trace, name)
        except SharedExperimentOwned as owned:
            _logger.warning("Could not trace DSPy execution %s: %s", execution.id, owned)
        except Exception:  # tracing is best effort, and logged
            _logger.exception("Could not trace DSPy execution %s", execution.id)
        return None, None

    def _write(self, execution, calls: list, experiment: str):
        from mlflow.entities import LiveSpan, SpanStatusCode, TraceInfo, TraceLocation, TraceState
        from mlflow.tracing.utils import generate_trace_id_v3
        from opentelemetry import trace as otel

        from mlflow_hokusai.plugins.models.registry import tracking_store

        experiment_id = self.experiment_id(experiment)
        end_ns = time.time_ns()
        start_ns = end_ns - int(execution.execution_time * 1e9)
        tracer = self._tracer()
        root_otel = tracer.start_span(f"dspy:{execution.model_name}", start_time=start_ns)
        trace_id = generate_trace_id_v3(root_otel)
        root = LiveSpan(root_otel, trace_id, SPAN_CHAIN)
        root.set_inputs(execution.inputs)
        root.set_attributes({"hokusai.program": execution.model_name,
                             "hokusai.version": execution.version,
                             "hokusai.execution_id": execution.id,
                             "hokusai.principal": execution.principal or ""})
        spans = []
        context = otel.set_span_in_context(root_otel)
        for call in calls:
            child = LiveSpan(tracer.start_span(call.get("predictor") or "predict",
                                               context=context, start_time=start_ns),
                             trace_id, SPAN_LLM)
            child.set_inputs(call.get("inputs"))
            child.set_outputs(call.get("outputs"))
            child.set_attribute("dspy.signature", call.get("signature"))
            # MLflow's span wraps an OpenTelemetry SDK span, which has end(); typed as
            # the read-only interface.
            child._span.end(end_time=end_ns)  # type: ignore[attr-defined]
            spans.append(child)
        if execution.success:
            root.set_outputs(execution.outputs)
            root.set_status(SpanStatusCode.OK)
        else:
            root.set_status(SpanStatusCode.ERROR)
            root.set_attribute("hokusai.error", execution.error)
        root_otel.end(end_time=end_ns)
        info = TraceInfo(
            trace_id=trace_id, trace_location=TraceLocation.from_experiment_id(experiment_id),
            request_time=start_ns // 1_000_000,
            execution_duration=(end_ns - start_ns) // 1_000_000,
            state=TraceState.OK if execution.success else TraceState.ERROR,
            request_preview=_preview(execution.inputs),
            response_preview=_preview(execution.outputs or execution.error),
            tags={"hokusai.program": execution.model_name,
                  "hokusai.execution_id": execution.id})
        store = tracking_store()
        store.start_trace(info)
        store.log_spans(experiment_id, [s.to_immutable_span() for s in (root, *spans)])
        return trace_id, experiment_id


def _preview(value) -> str:
    import json

    return json.dumps(value, default=str)[:1000]
