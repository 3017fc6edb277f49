"""An MLflow trace per execution, written by the server into its own tracking
store (the program's process has no store access): a root span with the
program's inputs and outputs (or error), and a child span per predictor call
the program made, as DSPy recorded them. The spans are made with a private
OpenTelemetry tracer provider, so nothing reaches MLflow's global tracing
state (the server's own fluent tracing, or another thread's trace)."""

from __future__ import annotations

import logging
import time

_logger = logging.getLogger(__name__)
SPAN_CHAIN, SPAN_LLM = "CHAIN", "LLM"


class Tracer:
    def __init__(self, settings):
        self.settings = settings
        self._provider = None

    def _tracer(self):
        if self._provider is None:
            from opentelemetry.sdk.trace import TracerProvider

            self._provider = TracerProvider()
        return self._provider.get_tracer("mlflow_hokusai.dspy")

    def __call__(self, execution, trace: list, experiment_id: str | None):
        """(trace id, experiment id); (None, None) when writing it fails (an
        execution is never failed by its trace). ``experiment_id``: the one the
        request named, which views.py checked the caller may write to; None for
        the server's shared experiment (``HOKUSAI_DSPY_EXPERIMENT``), which is
        found and written as the server, so that a caller who may not read it
        (``HOKUSAI_DEFAULT_PERMISSION=NO_PERMISSIONS``) is traced all the same."""
        from mlflow_hokusai.plugins.models.registry import tracking_store
        from mlflow_hokusai.plugins.store import reserved
        from mlflow_hokusai.plugins.store.owners import as_server

        try:
            if experiment_id is not None:
                return self._write(execution, trace, experiment_id)
            with as_server():
                shared = reserved.server_experiment(tracking_store(),
                                                    self.settings.dspy_experiment)
                return self._write(execution, trace, shared)
        except reserved.Unusable as unusable:
            _logger.warning("Could not trace DSPy execution %s: %s", execution.id, unusable)
        except Exception:  # tracing is best effort, and logged
            _logger.exception("Could not trace DSPy execution %s", execution.id)
        return None, None

    def _write(self, execution, calls: list, experiment_id: str):
        from mlflow.entities import LiveSpan, SpanStatusCode, TraceInfo, TraceLocation, TraceState
        from mlflow.tracing.utils import generate_trace_id_v3
        from opentelemetry import trace as otel

        from mlflow_hokusai.plugins.models.registry import tracking_store

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
