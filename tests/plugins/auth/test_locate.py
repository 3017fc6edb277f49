"""Where the permission check finds a request's resources (in-process)."""

from __future__ import annotations

import pytest

from mlflow_hokusai.errors import BadRequest
from mlflow_hokusai.pipeline import RequestContext, RequestInfo
from mlflow_hokusai.plugins.auth.locate import MAX_IDS, locate_all, native_values
from mlflow_hokusai.plugins.auth.resources import MLFLOW, access_of
from mlflow_hokusai.routes import Access

START_V3 = MLFLOW["StartTraceV3"]
BATCH = MLFLOW["BatchGetTraceInfos"]


def test_a_nested_id_is_found_in_either_spelling_and_must_agree():
    location = {"mlflow_experiment": {"experiment_id": "7"}}
    assert locate_all(START_V3, {"trace": {"trace_info": {"trace_location": location}}}) == ["7"]
    camel = {"trace": {"traceInfo": {"traceLocation": {"mlflowExperiment": {"experimentId": 7}}}}}
    assert locate_all(START_V3, camel) == ["7"]
    both = {"trace": {"trace_info": {"trace_location": location},
                      "traceInfo": {"traceLocation": {"mlflowExperiment": {"experimentId": "8"}}}}}
    with pytest.raises(BadRequest):
        locate_all(START_V3, both)
    assert locate_all(START_V3, {"trace": {}}) is None


def test_a_list_is_every_entry_once_and_its_spellings_must_agree():
    assert locate_all(BATCH, {"trace_ids": ["a", "b", "a"]}) == ["a", "b"]
    assert locate_all(BATCH, {"trace_ids": "a"}) == ["a"]  # a query that names one
    assert locate_all(BATCH, {"trace_ids": []}) is None
    with pytest.raises(BadRequest):
        locate_all(BATCH, {"trace_ids": ["a"], "traceIds": ["b"]})
    with pytest.raises(BadRequest):
        locate_all(BATCH, {"trace_ids": ["a", {"id": "b"}]})
    with pytest.raises(BadRequest):
        locate_all(BATCH, {"trace_ids": [str(i) for i in range(MAX_IDS + 1)]})


def _context(headers: list[tuple[bytes, bytes]]) -> RequestContext:
    scope = {"method": "POST", "path": "/v1/traces", "headers": headers, "query_string": b""}
    return RequestContext(RequestInfo.from_asgi(scope))


def test_otlp_is_judged_by_its_headers_and_a_repeated_one_is_refused():
    otlp = access_of("POST", "/v1/traces", "fastapi:/v1/traces", True, {})
    assert otlp == Access("experiment", "EDIT", "header:x-mlflow-experiment-id",
                          also=(Access("run", "EDIT", "header:x-mlflow-run-id"),))
    values = native_values(_context([(b"X-MLflow-Experiment-Id", b"3")]), otlp)
    assert locate_all(otlp, values) == ["3"] and locate_all(otlp.also[0], values) is None
    linked = native_values(_context([(b"x-mlflow-experiment-id", b"3"),
                                     (b"x-mlflow-run-id", b"abc")]), otlp)
    assert locate_all(otlp.also[0], linked) == ["abc"]
    repeated = _context([(b"x-mlflow-experiment-id", b"0"), (b"x-mlflow-experiment-id", b"3")])
    with pytest.raises(BadRequest):
        native_values(repeated, otlp)
