"""Values every route checks alike before they reach a database.

Databases refuse what Python happily passes on: integers beyond their column
(MLflow's version numbers are 32-bit on PostgreSQL, every SQLite integer is
64-bit), NUL characters (PostgreSQL) and unpaired UTF-16 surrogates (no UTF-8
encoding). Left to the driver, each is a 500; checked here, a 4xx that says
what is wrong.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import pydantic

MAX_VERSION = 2 ** 31 - 1  # MLflow's model_versions.version is an INTEGER column

# A model version number, as a path or body value.
VersionNumber = Annotated[int, pydantic.Field(ge=1, le=MAX_VERSION)]

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
UNSTORABLE_MESSAGE = "must not contain NUL characters or unpaired UTF-16 surrogates"


def unstorable_text(value: Any, where: tuple = ()) -> tuple | None:
    """Where in a parsed JSON value (``loc``) a string or key holds a character
    no database stores, or None."""
    if isinstance(value, str):
        return where if _UNSTORABLE.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            found = unstorable_text(key, where) or unstorable_text(item, (*where, key))
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = unstorable_text(item, (*where, index))
            if found is not None:
                return found
    return None


def version_number(raw: str) -> int:
    """A version number from a plain Flask route's path."""
    from mlflow_hokusai.errors import BadRequest

    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_VERSION):
        raise BadRequest(f"The version must be an integer from 1 to {MAX_VERSION}")
    return int(raw)
