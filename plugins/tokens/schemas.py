"""Request and response models of the tokenized-model endpoints (they validate
the requests and document the routes in /api/openapi.json)."""

from __future__ import annotations

import datetime
from typing import Annotated

import pydantic

from mlflow_hokusai.plugins.benchmarks.schemas import BenchmarkSpec
from mlflow_hokusai.plugins.store import tags
from mlflow_hokusai.plugins.store.ethereum import InvalidAddress, normalize_address
from mlflow_hokusai.rest import BodyModel, QueryModel
from mlflow_hokusai.values import VersionNumber

TOKEN_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?$"
TokenId = Annotated[str, pydantic.Field(pattern=TOKEN_PATTERN, min_length=1, max_length=64,
                                        description="1-64 letters, digits and hyphens, not "
                                        "starting or ending with a hyphen")]
FiniteNumber = Annotated[float, pydantic.Field(allow_inf_nan=False)]
NonEmpty = Annotated[str, pydantic.StringConstraints(strip_whitespace=True, min_length=1)]
# Set by the endpoint itself; a caller's own tags may not override them.
RESERVED_TAGS = tags.VERSION_TAGS | {"hokusai_status"}
# What a lineage entry and a contribution say about their benchmark values.
VALUE_VERIFIED = "The benchmark value was measured by the registry, or set by an `evaluator` key"
VERIFIED = ("The improvement counts toward totals: this value and the one it is measured from "
            "are both verified")


class RegisterTokenized(BodyModel):
    model_uri: NonEmpty = pydantic.Field(
        description="runs:/, models:/, mlflow-artifacts:/ or a location under the server's "
        "artifact root")
    model_name: Annotated[str, pydantic.StringConstraints(min_length=1, max_length=256)]
    token_id: TokenId
    metric_name: NonEmpty
    baseline_value: FiniteNumber
    contributor_address: str | None = None
    description: str | None = None
    tags: dict[str, str] | None = None
    benchmark: BenchmarkSpec | None = pydantic.Field(
        None, description="The token's benchmark (needs MANAGE on an existing model); "
        "its metric must be `metric_name`")

    @pydantic.model_validator(mode="after")
    def _same_metric(self):
        if self.benchmark is not None and self.benchmark.metric != self.metric_name:
            raise ValueError(f"benchmark.metric {self.benchmark.metric!r} differs from "
                             f"metric_name {self.metric_name!r}")
        return self

    @pydantic.field_validator("contributor_address")
    @classmethod
    def _address(cls, value):
        if value is None:
            return None
        try:
            return normalize_address(value)
        except InvalidAddress as error:
            raise ValueError(str(error)) from None

    @pydantic.field_validator("tags")
    @classmethod
    def _own_tags(cls, value):
        reserved = sorted(set(value or {}) & RESERVED_TAGS)
        if reserved:
            raise ValueError(f"set by this endpoint, not by tags: {', '.join(reserved)}")
        return value


class Registered(pydantic.BaseModel):
    benchmark_digest: str | None = pydantic.Field(
        None, description="SHA-256 of the stored benchmark dataset, when one was given")
    model_name: str
    version: int
    token_id: str
    metric_name: str
    baseline_value: float
    model_uri: str
    status: str
    registered_at: datetime.datetime


class Page(QueryModel):
    max_results: Annotated[int, pydantic.Field(ge=1, le=1000)] = 100
    page_token: str | None = pydantic.Field(
        None, description="next_page_token of the previous page")


class TokenVersion(pydantic.BaseModel):
    version: int
    stage: str
    aliases: list[str]
    benchmark_value: float | None
    run_id: str | None
    created_at: datetime.datetime


class ByToken(pydantic.BaseModel):
    token_id: str
    model_name: str
    metric_name: str | None
    baseline_value: float | None
    versions: list[TokenVersion]
    next_page_token: str | None


class LineageEntry(pydantic.BaseModel):
    version: int
    metrics: dict[str, float]
    created_at: datetime.datetime
    contributor: str | None
    improvement: float | None
    delta_one: float | None  # improvement in percentage points
    address_verified: bool  # the contributor was set by a principal that proved it, or admin
    value_verified: bool = pydantic.Field(description=VALUE_VERIFIED)
    verified: bool = pydantic.Field(description=VERIFIED)


class ModelLineage(pydantic.BaseModel):
    model_id: str
    lineage: list[LineageEntry]
    total_versions: int
    latest_version: int | None
    cumulative_improvement: float
    cumulative_delta_one: float
    next_page_token: str | None


class ParentVersion(pydantic.BaseModel):
    version: int
    run_id: str | None
    created_at: datetime.datetime


class Dataset(pydantic.BaseModel):
    name: str
    digest: str
    source_type: str
    source: str


class Experiment(pydantic.BaseModel):
    experiment_id: str
    name: str | None
    run_id: str


class VersionLineage(pydantic.BaseModel):
    model: str
    parents: list[str] = pydantic.Field(description='"name:version" of each parent, nearest '
                                                    'first (details in parent_versions)')
    training_data: list[str] = pydantic.Field(description="Dataset names (details in datasets)")
    experiments: list[str] = pydantic.Field(description="Experiment ids (details in "
                                                        "experiment_runs)")
    parent_versions: list[ParentVersion]
    datasets: list[Dataset]
    experiment_runs: list[Experiment]


class Contribution(pydantic.BaseModel):
    model_id: str
    version: int
    improvement_score: float | None
    delta_one: float | None
    address_verified: bool
    contributed_at: datetime.datetime
    value_verified: bool = pydantic.Field(description=VALUE_VERIFIED)
    verified: bool = pydantic.Field(description=VERIFIED)


class Impact(pydantic.BaseModel):
    address: str
    total_models_improved: int
    total_improvement_score: float
    total_delta_one: float
    contributions: list[Contribution]
    first_contribution: datetime.datetime | None
    last_contribution: datetime.datetime | None


class ModelPath(QueryModel):
    model_id: Annotated[str, pydantic.StringConstraints(min_length=1, max_length=256)]


class VersionPath(QueryModel):
    model_name: Annotated[str, pydantic.StringConstraints(min_length=1, max_length=256)]
    version: VersionNumber


class TokenPath(QueryModel):
    token_id: Annotated[str, pydantic.StringConstraints(min_length=1, max_length=64)]


class AddressPath(QueryModel):
    address: str
