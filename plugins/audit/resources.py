"""Which experiment, run, model, version or API key a write request touched.

Read from the request (path parameters, query, JSON body) and, for creations,
from the JSON answer, for Flask routes (MLflow's REST API and Hokusai's own).
Only these ids are kept: never a body, which may hold a new API key.
"""

from __future__ import annotations

_MAX_ANSWER = 64 * 1024  # larger answers are downloads, not creations
_REGISTRY_PATHS = ("registered-models", "model-versions", "/models")


def _pick(source: dict, *names):
    for name in names:
        value = source.get(name)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
            return str(value)
    return None


def _member(source: dict, name: str) -> dict:
    value = source.get(name)
    return value if isinstance(value, dict) else {}


def _answer_ids(answer: dict) -> dict:
    run_info = _member(_member(answer, "run"), "info")
    version = _member(answer, "model_version")
    model = _member(answer, "registered_model")
    return {"experiment_id": _pick(answer, "experiment_id") or _pick(run_info, "experiment_id"),
            "run_id": _pick(run_info, "run_id") or _pick(version, "run_id"),
            "model_name": _pick(version, "name") or _pick(model, "name")
            or _pick(answer, "model_name"),  # Hokusai's own registration answers
            "model_version": _pick(version, "version")
            or (_pick(answer, "version") if "model_name" in answer else None),
            "api_key_id": _pick(answer, "id") if "key" in answer else None}


def touched(path: str, view_args: dict, query: dict, body, answer) -> dict:
    """The resource ids of one request; ``body``/``answer`` are parsed JSON or None."""
    sources = [view_args or {}, query or {}]
    if isinstance(body, dict):
        sources.append(body)
    found: dict = {}
    for source in sources:
        ids = {"experiment_id": _pick(source, "experiment_id"),
               "run_id": _pick(source, "run_id", "run_uuid"),
               "model_name": _pick(source, "model_name"),
               "model_version": _pick(source, "version", "model_version"),
               "api_key_id": _pick(source, "key_id")}
        if any(part in path for part in _REGISTRY_PATHS):
            ids["model_name"] = ids["model_name"] or _pick(source, "name")
        # A permission grant or revocation names its resource by type and id.
        kind = {"experiment": "experiment_id", "registered_model": "model_name"}.get(
            source.get("resource_type") or "")
        if kind:
            ids[kind] = ids[kind] or _pick(source, "resource_id")
        for name, value in ids.items():
            found[name] = found.get(name) or value
    if isinstance(answer, dict):
        for name, value in _answer_ids(answer).items():
            found[name] = found.get(name) or value
    return {name: value for name, value in found.items() if value}


def _json(message, small_only: bool = False):
    if not message.is_json or (small_only and (message.is_streamed or
                                               (message.content_length or 0) > _MAX_ANSWER)):
        return None
    try:
        return message.get_json(silent=True)
    except RecursionError:  # deeply nested JSON: the view has refused it already
        return None


def from_flask(request, response) -> dict:
    body, answer = _json(request), _json(response, small_only=True)
    return touched(request.path, request.view_args, request.args.to_dict(), body, answer)
