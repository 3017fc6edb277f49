"""Request and response models of the benchmark routes."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Annotated, Literal

import pydantic

from mlflow_hokusai.plugins.models.evaluation import METRICS
from mlflow_hokusai.rest import BodyModel, QueryModel
from mlflow_hokusai.values import VersionNumber

NonEmpty = Annotated[str, pydantic.StringConstraints(strip_whitespace=True, min_length=1,
                                                     max_length=1000)]
if TYPE_CHECKING:  # the names are known when evaluation's METRICS is read
    Metric = str
else:
    Metric = Literal[tuple(METRICS)]


class BenchmarkSpec(BodyModel):
    metric: Metric = pydantic.Field(description="A metric POST /models/evaluate knows")
    direction: Literal["higher", "lower"] = pydantic.Field(
        description="Whether a higher or a lower value is better")
    dataset_uri: NonEmpty = pydantic.Field(
        description="runs:/ or mlflow-artifacts:/ URI (or a path under "
        "HOKUSAI_EVALUATION_DATA_ROOT) of a CSV or Parquet file; the server keeps a copy")
    target_column: Annotated[str, pydantic.StringConstraints(min_length=1, max_length=256)]


class MeasureBody(BodyModel):
    """No fields: what is measured, and on what, is the token's benchmark. The
    body may be empty or ``{}``."""


class Benchmark(pydantic.BaseModel):
    token_id: str
    model_name: str
    metric: str
    direction: str
    target_column: str
    source_uri: str
    dataset_uri: str
    dataset_digest: str
    set_by: str | None
    set_at: datetime.datetime


class Measured(pydantic.BaseModel):
    model_name: str
    version: int
    token_id: str
    metric: str
    value: float
    dataset_digest: str
    run_id: str
    mlflow_version: str
    sandbox: str
    rows: int
    superseded_value: float | None = pydantic.Field(
        description="The version's verified value this measurement replaced, if any")


class TokenPath(QueryModel):
    token_id: Annotated[str, pydantic.StringConstraints(min_length=1, max_length=64)]


class VersionPath(QueryModel):
    name: Annotated[str, pydantic.StringConstraints(min_length=1, max_length=256)]
    version: VersionNumber
