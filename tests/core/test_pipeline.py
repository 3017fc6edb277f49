"""The request pipeline: a step that needs I/O on the event loop makes the
pipeline resume in a thread at that step; no earlier step runs twice."""

import pytest

from mlflow_hokusai.errors import AuthenticationFailed, RateLimited
from mlflow_hokusai.pipeline import LookupNeeded, Pipeline, RequestContext, RequestInfo


def _context():
    return RequestContext(RequestInfo("GET", "/x", {}, "", "127.0.0.1"))


def _pipeline(calls, failing=None):
    pipeline = Pipeline()

    def step(name, needs_io=False):
        def run(context, allow_io):
            if needs_io and not allow_io:
                raise LookupNeeded
            calls.append(name)
            if name == failing:
                raise AuthenticationFailed("invalid")
        return run

    pipeline.add(step("first"), order=-10)
    pipeline.add(step("lookup", needs_io=True), order=0)
    pipeline.add(step("last"), order=10)
    return pipeline


def test_a_lookup_resumes_at_its_step():
    calls = []
    pipeline, context = _pipeline(calls), _context()
    with pytest.raises(LookupNeeded):
        pipeline.run(context, allow_io=False)
    assert calls == ["first"]
    pipeline.run(context, allow_io=True)
    assert calls == ["first", "lookup", "last"]


def test_refusal_hooks_resume_too_and_may_answer_instead():
    calls, seen = [], []
    pipeline, context = _pipeline(calls, failing="first"), _context()

    def hook(context, error, allow_io):
        if not allow_io:
            raise LookupNeeded
        seen.append(error.reason)
        raise RateLimited(5)

    pipeline.on_refusal(hook)
    with pytest.raises(LookupNeeded):
        pipeline.run(context, allow_io=False)
    with pytest.raises(RateLimited):
        pipeline.run(context, allow_io=True)
    assert calls == ["first"] and seen == ["invalid"]  # the refused step ran once
