"""The breaker's pipeline step in process: while the breaker is open a request
is refused before the gate looks up its key, on the event loop itself (no
hand-off to a thread for I/O), with Retry-After from the breaker's clock."""

import pytest

from mlflow_hokusai.errors import ServiceUnavailable
from mlflow_hokusai.pipeline import Pipeline, RequestContext, RequestInfo
from mlflow_hokusai.plugins.auth import keys
from mlflow_hokusai.plugins.auth.gate import Gate
from mlflow_hokusai.plugins.health.breaker import BreakerStep, CircuitBreaker
from mlflow_hokusai.settings import Settings
from tests.support.clock import FakeClock


class NoDatabase:
    """A key store that fails the test when anything asks it."""

    def __getattr__(self, name):
        raise AssertionError(f"the key store was asked ({name}) while the breaker was open")


def _search() -> RequestContext:
    return RequestContext(RequestInfo("POST", "/api/2.0/mlflow/experiments/search",
                                      {"x-api-key": keys.generate()}, "", "127.0.0.1"))


def test_an_open_breaker_refuses_before_any_key_lookup():
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, recovery_seconds=10, success_threshold=2,
                             clock=clock)
    for _ in range(3):
        breaker.record_failure()
    assert breaker.state == "open"
    gate = Gate(Settings.from_env({}), NoDatabase())
    pipeline = Pipeline()
    pipeline.add(BreakerStep(breaker, set()), order=0)
    pipeline.add(gate, order=10)
    for elapsed, retry_after in ((0, "10"), (8.5, "2"), (9.5, "1")):
        clock.now = 1000.0 + elapsed
        context = _search()
        with pytest.raises(ServiceUnavailable) as refused:
            pipeline.run(context, allow_io=False)  # on the event loop: no LookupNeeded
        assert "circuit breaker" in refused.value.detail
        assert refused.value.headers["Retry-After"] == retry_after
        assert context.principal is None
