"""Scopes, from weakest to strongest. A stronger scope includes the weaker ones:
an ``admin`` key can also write and read, a ``write`` key can also read.

``evaluator`` is a ``write`` scope for an external evaluation service: the
``benchmark_value`` tags its keys set count as verified benchmark values
(plugins/benchmarks). It must be held by name (``vouches``): an ``admin`` key
passes every scope check but does not vouch for a number it types."""

from mlflow_hokusai.settings import SCOPES as ALL

READ, WRITE, EVALUATOR, ADMIN = ALL
BOOTSTRAP = (READ, WRITE, ADMIN)  # the first admin key's
_RANK = {scope: rank for rank, scope in enumerate(ALL)}


def grants(held: frozenset[str] | set[str], needed: str) -> bool:
    return any(_RANK[scope] >= _RANK[needed] for scope in held if scope in _RANK)


def vouches(held: frozenset[str] | set[str]) -> bool:
    """Whether a benchmark value set with these scopes counts as verified."""
    return EVALUATOR in held


def parse(value: str | list | tuple) -> tuple[str, ...]:
    """Validate a comma-separated string or list of scope names."""
    items = value.split(",") if isinstance(value, str) else list(value)
    scopes = []
    for item in items:
        name = str(item).strip().lower()
        if name not in _RANK:
            raise ValueError(f"unknown scope {item!r}; scopes are {', '.join(ALL)}")
        if name not in scopes:
            scopes.append(name)
    if not scopes:
        raise ValueError("at least one scope is required")
    return tuple(sorted(scopes, key=_RANK.__getitem__))  # each is known (checked above)
