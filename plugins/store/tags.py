"""The tags the registry index reads, and what a valid value of each is.

Clients set them through MLflow's standard API, so the stores check them before
MLflow writes anything: a bad value is refused with INVALID_PARAMETER_VALUE
(HTTP 400) and nothing is stored.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from mlflow_hokusai.plugins.store.ethereum import InvalidAddress, normalize_address

TOKEN_ID = "hokusai_token_id"
BENCHMARK_METRIC = "benchmark_metric"
BENCHMARK_VALUE = "benchmark_value"
BENCHMARK_DIRECTION = "benchmark_direction"
CONTRIBUTOR = "hokusai_contributor"
PARENT_VERSION = "hokusai_parent_version"

VERSION_TAGS = frozenset({TOKEN_ID, BENCHMARK_METRIC, BENCHMARK_VALUE, BENCHMARK_DIRECTION,
                          CONTRIBUTOR, PARENT_VERSION})
MODEL_TAGS = frozenset({BENCHMARK_DIRECTION})
DIRECTIONS = ("higher", "lower")

# JSON's number grammar (SQLite's trigger checks with json_valid), at most 20 digits
# each side of the point and a two-digit exponent, so every database reads it alike.
_NUMBER = re.compile(r" *-?(0|[1-9][0-9]{0,19})(\.[0-9]{1,20})?([eE][-+]?[0-9]{1,2})? *")
_TOKEN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?")


def invalid(message: str) -> MlflowException:
    return MlflowException(message, INVALID_PARAMETER_VALUE)


def valid_token_id(value: str) -> bool:
    return isinstance(value, str) and bool(_TOKEN.fullmatch(value))


def parse_token_id(value: str) -> str:
    if not valid_token_id(value):
        raise invalid(f"Invalid {TOKEN_ID} {value!r}: use 1-64 letters, digits and hyphens, "
                      "not starting or ending with a hyphen")
    return value


def parse_number(value: str, what: str = BENCHMARK_VALUE) -> float:
    # Only the decimal forms the index triggers read alike on every database.
    number = float(value) if isinstance(value, str) and _NUMBER.fullmatch(value) else math.nan
    if not math.isfinite(number):
        raise invalid(f"Invalid {what} {value!r}: must be a finite number, written "
                      "like 0.87, -1.5 or 2e-3")
    return number


def parse_direction(value: str) -> str:
    direction = str(value).strip(" ").lower()  # as SQL's trim() reads it
    if direction not in DIRECTIONS:
        raise invalid(f"Invalid {BENCHMARK_DIRECTION} {value!r}: use 'higher' or 'lower'")
    return direction


def parse_contributor(value: str) -> str:
    try:
        return normalize_address(value)
    except InvalidAddress as error:
        raise invalid(f"Invalid {CONTRIBUTOR}: {error}") from None


def parse_parent(value: str) -> int:
    if not (isinstance(value, str) and value.isascii() and value.isdigit()
            and len(value) <= 9 and int(value) > 0):
        raise invalid(f"Invalid {PARENT_VERSION} {value!r}: must be a positive version number")
    return int(value)


def parse_metric(value: str) -> str:
    if not str(value).strip():
        raise invalid(f"Invalid {BENCHMARK_METRIC}: must not be empty")
    return value


_PARSERS: dict[str, Callable[[str], Any]] = {
    TOKEN_ID: parse_token_id, BENCHMARK_METRIC: parse_metric,
    BENCHMARK_VALUE: parse_number, BENCHMARK_DIRECTION: parse_direction,
    CONTRIBUTOR: parse_contributor, PARENT_VERSION: parse_parent}


def parse(key: str, value: str):
    """The indexed form of a Hokusai tag's value (raises on a bad one)."""
    return _PARSERS[key](value)


def parse_all(tags, keys=VERSION_TAGS) -> dict:
    """The Hokusai tags among MLflow tag entities, parsed (last one of a key wins,
    as MLflow stores them)."""
    return {tag.key: parse(tag.key, tag.value) for tag in tags or [] if tag.key in keys}
