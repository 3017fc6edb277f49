"""Which limits apply to a request: the key's (its own, else its tier's) and, for
some route groups, a per-key route limit on top. All from settings."""

from __future__ import annotations

import dataclasses
import re

import limits

from mlflow_hokusai.errors import ConfigurationError
from mlflow_hokusai.plugins.auth.permissions import normalize
from mlflow_hokusai.settings import TIERS

_MLFLOW_API = r"/(?:api|ajax-api)/[23]\.0/?mlflow/"
# Route groups that can carry their own limit (HOKUSAI_ROUTE_LIMITS names them).
ROUTE_GROUPS: dict[str, list[tuple[frozenset[str], re.Pattern]]] = {
    "registration": [
        (frozenset({"POST"}), re.compile(r"(?:/api)?/models/register(?:-tokenized)?")),
        (frozenset({"POST"}), re.compile(_MLFLOW_API + r"(?:registered-models|model-versions)"
                                         r"/create")),
    ],
    "lineage": [(frozenset({"GET"}), re.compile(r"(?:/api)?/models/[^/]+(?:/[^/]+)?/lineage"))],
    "contributor_impact": [
        (frozenset({"GET"}), re.compile(r"(?:/api)?/models/contributors/[^/]+/impact")),
    ],
    # Each runs a model in the sandbox: seconds of CPU per request.
    "evaluation": [
        (frozenset({"POST"}), re.compile(r"(?:/api)?/models/(?:evaluate|[^/]+/[^/]+/benchmark)")),
    ],
    # Each runs a DSPy program in the sandbox (a batch, many) and spends the server's LM;
    # a listing loads there each listed program the worker has not loaded yet.
    "dspy": [(frozenset({"POST"}), re.compile(r"/api/v1/dspy/execute(?:/batch)?")),
             (frozenset({"GET"}), re.compile(r"/api/v1/dspy/programs"))],
}


def _pairs(setting_name: str, raw: str, allowed) -> dict[str, limits.RateLimitItem]:
    parsed = {}
    for pair in filter(None, (p.strip() for p in raw.split(","))):
        name, _, limit = pair.partition("=")
        name = name.strip()
        if name not in allowed:
            raise ConfigurationError(f"HOKUSAI_{setting_name.upper()}: unknown name {name!r}; "
                                     f"known: {', '.join(allowed)}")
        try:
            parsed[name] = limits.parse(limit)
        except ValueError:
            raise ConfigurationError(f"HOKUSAI_{setting_name.upper()}: {limit!r} is not a limit "
                                     "such as '100/minute'") from None
    return parsed


class Policy:
    def __init__(self, settings):
        self.tiers = _pairs("tier_limits", settings.tier_limits, TIERS)
        missing = set(TIERS) - set(self.tiers)
        if missing:
            raise ConfigurationError(f"HOKUSAI_TIER_LIMITS: no limit for {', '.join(missing)}")
        self.routes = _pairs("route_limits", settings.route_limits, ROUTE_GROUPS)
        self.default_tier = settings.default_tier

    def key_limit(self, principal) -> limits.RateLimitItem:
        if principal.rate_limit:
            return limits.parse(principal.rate_limit)
        return self.tiers.get(principal.tier or self.default_tier, self.tiers[self.default_tier])

    def route_limit(self, group: str | None) -> tuple[str, limits.RateLimitItem] | None:
        if not group:
            return None
        item = self.routes.get(group)
        return (group, item) if item else None


def with_group(route):
    """Route-table refiner: the rate-limit group of a route, from its template."""

    template = normalize(route.template)
    for group, members in ROUTE_GROUPS.items():
        if any(route.method in methods and pattern.fullmatch(template)
               for methods, pattern in members):
            return dataclasses.replace(route, rate_group=group)
    return route
