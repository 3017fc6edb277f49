"""Request and response models of the tokenized-model endpoints (they validate
the requests and document the routes in /api/openapi.json)."""

from __future__ import annotations

import datetime
from typing import Annotated, Optional

import pydantic

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


class RegisterTokenized(BodyModel):
    model_uri: NonEmpty = pydantic.Field(
        description="runs:/, models:/, mlflow-artifacts:/ or a location under the server's "
        "artifact root")
    model_name: Annotated[str, pydantic.StringConstraints(min_length=1, max_length=256)]
    token_id: TokenId
    metric_name: NonEmpty
    baseline_value: FiniteNumber
    contributor_address: Optional[str] = None
    description: Optional[str] = None
    tags: Optional[dict[str, str]] = None

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
    page_token: Optional[str] = pydantic.Field(
        None, description="next_page_token of the previous page")


class TokenVersion(pydantic.BaseModel):
    version: int
    stage: str
    aliases: list[str]
    benchmark_value: Optional[float]
    run_id: Optional[str]
    created_at: datetime.datetime


class ByToken(pydantic.BaseModel):
    token_id: str
    model_name: str
    metric_name: Optional[str]
    baseline_value: Optional[float]
    versions: list[TokenVersion]
    next_page_token: Optional[str]


class LineageEntry(pydantic.BaseModel):
    version: int
    metrics: dict[str, float]
    created_at: datetime.datetime
    contributor: Optional[str]
    improvement: Optional[float]


class ModelLineage(pydantic.BaseModel):
    model_id: str
    lineage: list[LineageEntry]
    total_versions: int
    latest_version: Optional[int]
    cumulative_improvement: float
    next_page_token: Optional[str]


class ParentVersion(pydantic.BaseModel):
    version: int
    run_id: Optional[str]
    created_at: datetime.datetime


class Dataset(pydantic.BaseModel):
    name: str
    digest: str
    source_type: str
    source: str


class Experiment(pydantic.BaseModel):
    experiment_id: str
    name: Optional[str]
    run_id: str


class VersionLineage(pydantic.BaseModel):
    model: str
    parents: list[ParentVersion]
    training_data: list[Dataset]
    experiments: list[Experiment]


class Contribution(pydantic.BaseModel):
    model_id: str
    version: int
    improvement_score: Optional[float]
    contributed_at: datetime.datetime


class Impact(pydantic.BaseModel):
    address: str
    total_models_improved: int
    total_improvement_score: float
    contributions: list[Contribution]
    first_contribution: Optional[datetime.datetime]
    last_contribution: Optional[datetime.datetime]


class ModelPath(QueryModel):
    model_id: Annotated[str, pydantic.StringConstraints(min_length=1, max_length=256)]


class VersionPath(QueryModel):
    model_name: Annotated[str, pydantic.StringConstraints(min_length=1, max_length=256)]
    version: VersionNumber


class TokenPath(QueryModel):
    token_id: Annotated[str, pydantic.StringConstraints(min_length=1, max_length=64)]


class AddressPath(QueryModel):
    address: str
