"""Where a request names the resources its route touches, read exactly where
the view will read them: the query of a GET or the JSON body for MLflow's
protobuf handlers (camelCase aliases included, as protobuf's parser takes
them), path parameters, or a header (OTLP). Every spelling must agree, since
MLflow's views differ in which one wins."""

from __future__ import annotations

import json

from mlflow_hokusai.errors import BadRequest
from mlflow_hokusai.pipeline import RequestContext

# Each id of a list is looked up before MLflow sees its own limits: a bound on
# the work one request can ask of the check.
MAX_IDS = 1000
# Where else an id may be, in the order MLflow's handlers read them.
_FIELDS = {"run_id": ("run_id", "run_uuid")}
_OPTIONAL = {"artifact"}  # no path: the artifact root itself


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _reached(values: dict, locator: str) -> list:
    """Every value a (dotted) locator reaches, each segment in snake_case or in
    the camelCase alias protobuf's JSON parser also takes."""
    level = [values]
    for segment in locator.split("."):
        level = [node[name] for node in level if isinstance(node, dict)
                 for name in dict.fromkeys((segment, _camel(segment))) if name in node]
    return level


def _is_id(value) -> bool:
    return isinstance(value, (str, int)) and not isinstance(value, bool) and str(value) != ""


def locate(access, values: dict) -> str | None:
    """The resource id a request names. Every place a view might read it from is
    looked at (snake_case and the camelCase aliases protobuf's JSON parser takes,
    ``run_id`` and ``run_uuid``), and they must agree: MLflow's views differ in
    which one wins (``upload-artifact`` reads ``run_uuid``, GET handlers read
    only snake_case query names), so a request naming two would be judged on
    one resource and served on another."""
    found = {str(value) for field in _FIELDS.get(access.locator, (access.locator,))
             for value in _reached(values, field) if _is_id(value)}
    if len(found) > 1:
        raise BadRequest(f"The request names more than one {access.kind}; name it once")
    if found:
        return found.pop()
    if access.kind in _OPTIONAL:
        return ""
    return None


def _lists(values: dict, locator: str) -> list[list]:
    """Each list a list locator reaches, one per spelling; ``head[].tail``
    reaches the ``tail`` of every entry of the list ``head``."""
    head, _, tail = locator.partition("[].")
    lists = [value if isinstance(value, list) else [value] for value in _reached(values, head)]
    if not tail:
        return lists
    return [[ident for entry in entries for ident in _reached(entry, tail)]
            for entries in lists]


def locate_all(access, values: dict) -> list[str] | None:
    """The ids a request names: one, or for a list locator (``many``) every
    entry of the one list it names (two spellings must name the same list)."""
    if not access.many:
        ident = locate(access, values)
        return None if ident is None else [ident]
    lists = _lists(values, access.locator)
    if not all(_is_id(ident) for idents in lists for ident in idents):
        raise BadRequest(f"Every entry of '{access.locator}' must be a string id")
    if any(len(idents) > MAX_IDS for idents in lists):
        raise BadRequest(f"'{access.locator}' names more than {MAX_IDS} ids; split the request")
    named = {tuple(str(ident) for ident in idents) for idents in lists}
    if len(named) > 1:
        raise BadRequest(f"The request names '{access.locator}' twice; name it once")
    return list(dict.fromkeys(named.pop())) if named and any(named) else None


# Views that are not MLflow's protobuf handlers but read the JSON body as they do.
_JSON_VIEWS = frozenset({"serve_search_datasets", "serve_create_promptlab_run",
                         "_get_online_scoring_configs", "_upsert_online_scoring_config",
                         "_invoke_scorer_handler",
                         "_invoke_issue_detection_handler", "_invoke_genai_evaluate_handler"})


def accesses(access) -> tuple:
    return (access, *access.also) if access else ()


def flask_values(route) -> dict:
    """What the view reads: MLflow's protobuf handlers read the query of a GET
    and otherwise only the JSON body (however it is labelled); other views read
    the query (a few the body). A list locator takes every value a query
    repeats. Path parameters always. An artifact route's body is the upload
    itself: never read here."""
    import flask

    request = flask.request
    values: dict = {}
    if (route.key[:1].isupper() or route.key in _JSON_VIEWS) and \
            route.access.kind != "artifact" and \
            not (request.method == "GET" and request.args):
        body = request.get_json(force=True, silent=True)
        if isinstance(body, str):  # older clients double-encode, MLflow decodes twice
            try:
                body = json.loads(body)
            except ValueError:
                body = None
        values = body if isinstance(body, dict) else {}
    else:
        values = request.args.to_dict()
        for access in accesses(route.access):
            if access.many:
                values = {**values, **{name: request.args.getlist(name) for name in
                              (access.locator, _camel(access.locator)) if name in request.args}}
    return {**values, **(request.view_args or {})}


def native_values(context: RequestContext, access) -> dict:
    """A FastAPI-native route's path parameters, and the header its view reads
    (``header:<name>``); a header given twice is refused, since the view takes
    the first and a proxy may keep either."""
    values = dict(context.route_params)
    for locator in (each.locator for each in accesses(access)):
        name = locator.removeprefix("header:")
        if name == locator:
            continue
        if name in context.request.repeated_headers:
            raise BadRequest(f"The request names the header '{name}' more than once")
        if context.request.headers.get(name):
            values[locator] = context.request.headers[name]
    return values
