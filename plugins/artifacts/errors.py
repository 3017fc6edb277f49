"""The package's own errors, and their one translation into MlflowException.

Low-level modules raise these (no MLflow import needed); the repository turns
them into the error codes MLflow's server renders: validation problems are
INVALID_PARAMETER_VALUE (400), a missing path RESOURCE_DOES_NOT_EXIST (404),
stored bytes that fail verification DATA_LOSS (500: the data is damaged).
Messages name the rule or the relative path, never a bucket, host or credential.
"""

from __future__ import annotations

import contextlib

from mlflow_hokusai.plugins.artifacts.locations import InvalidLocation
from mlflow_hokusai.plugins.artifacts.paths import UnsafePath


class ArtifactNotFound(LookupError):
    pass


class InvalidRequest(ValueError):
    """A request parameter outside what the repository accepts."""


class PathConflict(InvalidRequest):
    """A file where a directory is needed, or the other way round."""


class CorruptArtifact(RuntimeError):
    """Stored bytes (or a stored mapping) are not what was written."""


@contextlib.contextmanager
def as_mlflow_errors():
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import (
        DATA_LOSS,
        INVALID_PARAMETER_VALUE,
        RESOURCE_DOES_NOT_EXIST,
    )

    try:
        yield
    except (UnsafePath, InvalidLocation, InvalidRequest) as exc:
        raise MlflowException(f"Invalid artifact path or location: {exc}",
                              error_code=INVALID_PARAMETER_VALUE) from None
    except ArtifactNotFound as exc:
        raise MlflowException(f"No such artifact: '{exc}'",
                              error_code=RESOURCE_DOES_NOT_EXIST) from None
    except CorruptArtifact as exc:
        raise MlflowException(f"Artifact failed verification: {exc}",
                              error_code=DATA_LOSS) from None
