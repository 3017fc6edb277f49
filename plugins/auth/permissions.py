"""Which scope each route needs: an exact public allow-list, then an ordered rule
table, then the default (GET/HEAD need ``read``, every other method ``write``).

Applied once per route template when the route table is built (see
mlflow_hokusai.routes and plugins.auth.annotate), and to the path itself for a
request no route matches. A route nobody listed is never public. Plugins add
their rules and public paths to their app's route table (``add_rule``,
``add_public_path``); those come first, then the built-in ones below.
"""

from __future__ import annotations

import itertools
import os
import re

from mlflow_hokusai.mlflow_compat import READ_ONLY_POSTS, STATIC_PREFIX_ENV
from mlflow_hokusai.plugins.auth.scopes import ADMIN, ALL, READ, WRITE
from mlflow_hokusai.routes import Rule

SAFE_METHODS = frozenset({"GET", "HEAD"})
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ANY_METHOD = SAFE_METHODS | WRITE_METHODS | {"OPTIONS"}

# GET/HEAD only, matched exactly. Plugins add their own public probes to their
# route table (the health plugin's /health, /live, ...).
PUBLIC_PATHS = frozenset({"/", "/health", "/version"})
# The UI's static files. Only plain relative file paths qualify (see _is_plain_file).
PUBLIC_FILE_PREFIXES = ("/static-files/", "/build/")

# MLflow's REST families, including the route MLflow registers without the
# slash ("/api/2.0mlflow/experiments/search-datasets").
_MLFLOW_API = r"/(?:api|ajax-api)/[23]\.0/?mlflow/"


def _rule(methods, pattern: str, scope: str) -> Rule:
    return Rule(frozenset(methods), re.compile(pattern), scope)


RULES: tuple[Rule, ...] = (
    _rule(ANY_METHOD, r"/api/keys(?:/.*)?", ADMIN),
    # Server-wide resources Hokusai has no per-resource permissions for are
    # operator matters, not a model author's: changing the AI gateway (provider
    # secrets, endpoints, budgets, guardrails: one key could rewire or delete
    # another's endpoint), workspaces, and installing assistant skills (code).
    # Webhooks, read too: one receives every principal's model events (private
    # models' names, sources and tags). Deleting MLflow's demo hard-deletes data
    # another principal generated. As MLflow's basic-auth judges them, or stricter.
    _rule(WRITE_METHODS, _MLFLOW_API + r"gateway/.*", ADMIN),
    _rule(SAFE_METHODS, _MLFLOW_API + r"gateway/guardrails/(?:get|list)", ADMIN),
    _rule(WRITE_METHODS, _MLFLOW_API + r"workspaces(?:/.*)?", ADMIN),
    _rule(ANY_METHOD, _MLFLOW_API + r"webhooks(?:/.*)?", ADMIN),
    _rule({"POST"}, r"/ajax-api/3\.0/mlflow/demo/delete", ADMIN),
    _rule({"PUT"}, r"/ajax-api/3\.0/mlflow/assistant/config", ADMIN),
    _rule({"POST"}, r"/ajax-api/3\.0/mlflow/assistant/skills/install", ADMIN),
    # MLflow's GraphQL schema has only queries (its "mutations" are searches).
    _rule({"POST"}, r"/graphql", READ),
    _rule({"POST"}, _MLFLOW_API + "(?:" + "|".join(map(re.escape, READ_ONLY_POSTS)) + ")", READ),
    _rule({"POST"}, r"/ajax-api/3\.0/jobs/search", READ),
)


# POSTs that spend provider credentials: MLflow's AI gateway invocations
# (FastAPI-native, uvicorn only; its one GET lists the endpoints) and the UI's
# proxy to the deployments server the operator configured. Their scope is a
# setting (HOKUSAI_GATEWAY_SCOPE) the auth plugin declares: MLflow's basic-auth
# grants USE per endpoint, Hokusai has no per-endpoint permission, so one scope
# opens them all. Audited whatever that scope is.
GATEWAY_CALLS = (r"/gateway/.*", r"/ajax-api/2\.0/mlflow/gateway-proxy")
_GATEWAY_CALL = re.compile("|".join(GATEWAY_CALLS))


def spends_gateway(method: str, path: str) -> bool:
    return method == "POST" and bool(_GATEWAY_CALL.fullmatch(normalize(path)))


def _static_prefix() -> str:
    return os.environ.get(STATIC_PREFIX_ENV, "").rstrip("/")


def normalize(path: str) -> str:
    """The path as MLflow's routes are written (without ``--static-prefix``)."""
    prefix = _static_prefix()
    if prefix and (path == prefix or path.startswith(prefix + "/")):
        return path[len(prefix):] or "/"
    return path


def _is_plain_file(path: str, prefix: str) -> bool:
    rest = path[len(prefix):]
    return bool(rest) and not rest.startswith("/") and \
        not any(bad in rest for bad in ("..", "//", "\\", "%", "\x00"))


def is_public(method: str, path: str, headers: dict[str, str],
              declared: set[str] | frozenset[str] = frozenset()) -> bool:
    """``declared``: the public paths the app's plugins added."""
    if method == "OPTIONS":
        # A CORS preflight carries no credentials by design.
        return "access-control-request-method" in headers and "origin" in headers
    if method not in SAFE_METHODS:
        return False
    if path in PUBLIC_PATHS or path in declared:
        return True
    # Only MLflow's UI moves under --static-prefix; Hokusai's routes do not.
    ui_path = normalize(path)
    return ui_path == "/" or any(ui_path.startswith(p) and _is_plain_file(ui_path, p)
                                 for p in PUBLIC_FILE_PREFIXES)


def _rule_scope(method: str, path: str, declared) -> str:
    for rule in itertools.chain(declared, RULES):
        if method in rule.methods and rule.pattern.fullmatch(path):
            return rule.scope
    return READ if method in SAFE_METHODS or method == "OPTIONS" else WRITE


def required_scope(method: str, path: str, declared: list[Rule] | tuple = ()) -> str:
    """The stronger of the scopes the path needs as written and without the
    static prefix: MLflow's routes move under the prefix, Hokusai's do not.
    ``declared``: the rules the app's plugins added (they come first)."""
    needed = _rule_scope(method, path, declared)
    unprefixed = normalize(path)
    if unprefixed != path:  # only under --static-prefix: otherwise one walk suffices
        needed = max(needed, _rule_scope(method, unprefixed, declared), key=ALL.index)
    return needed
