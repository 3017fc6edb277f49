"""The language model programs call: ``HOKUSAI_DSPY_LM`` (a litellm model
string, optionally at ``HOKUSAI_DSPY_LM_API_BASE``, which can be an MLflow AI
Gateway endpoint's OpenAI-compatible URL). The program's process sends each
call's messages to the server (runner.py's ServerLM); the server makes the
call with keys from its own environment, so no key reaches program code and
none is ever taken from a request."""

from __future__ import annotations

import os
from collections.abc import Callable

# What a program may ask of the call; never a key, a URL or a model of its own.
ALLOWED = ("temperature", "max_tokens", "max_completion_tokens", "n", "stop", "top_p",
           "seed", "response_format")


def caller(settings) -> Callable[[dict, float], dict] | None:
    if not settings.dspy_lm:
        return None

    # litellm would otherwise fetch its price list from GitHub on import.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

    def call(request: dict, timeout: float) -> dict:
        """One completion within ``timeout`` seconds (what is left of the
        execution's time limit); no retries, which would run past it."""
        import litellm

        options = {key: request[key] for key in ALLOWED if key in request}
        if settings.dspy_lm_api_base:
            options["api_base"] = settings.dspy_lm_api_base
        response = litellm.completion(model=settings.dspy_lm, messages=request["messages"],
                                      timeout=timeout, num_retries=0, max_retries=0,
                                      **options)
        return response.model_dump()

    return call
