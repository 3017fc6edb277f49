"""Request and response models of the model management API (validation and
the OpenAPI document both come from here)."""

from __future__ import annotations

import datetime
from typing import Annotated, Any, Literal

import pydantic
from pydantic import BaseModel, Field

from mlflow_hokusai.rest import BodyModel, QueryModel
from mlflow_hokusai.values import MAX_VERSION, VersionNumber

STAGES = ("None", "Staging", "Production", "Archived")
MAX_LATENCY_MS = 86_400_000.0


def _canonical_stage(value: Any) -> Any:
    if isinstance(value, str):
        for stage in STAGES:
            if value.strip().lower() == stage.lower():
                return stage
    return value


# "None", "Staging", "Production" or "Archived", in any case.
Stage = Annotated[Literal["None", "Staging", "Production", "Archived"],
                  pydantic.BeforeValidator(_canonical_stage)]


def parse_ref(ref: str) -> tuple[str, int]:
    name, _, version = ref.rpartition(":")
    return name, int(version)


def _version_in_range(ref: str) -> str:
    if parse_ref(ref)[1] > MAX_VERSION:
        raise ValueError(f"the version must be at most {MAX_VERSION}")
    return ref


# "Name:Version"; the name may itself contain colons (the version is after the last).
ModelRef = Annotated[str, Field(pattern=r"^.+:[1-9][0-9]{0,9}$", examples=["fraud:3"]),
                     pydantic.AfterValidator(_version_in_range)]


class VersionPath(QueryModel):
    name: str
    version: VersionNumber


# --- registry views ---------------------------------------------------------

class ListQuery(QueryModel):
    name: Annotated[str | None, Field(pattern=r"^[^'\"]*$",
                                      description="Substring of the model name")] = None
    max_results: int = Field(100, ge=1, le=1000)
    # MLflow's page tokens are base64; anything else would fail inside MLflow.
    page_token: Annotated[str | None, Field(pattern=r"^[A-Za-z0-9+/=_-]{1,4096}$")] = None


class ModelSummary(BaseModel):
    name: str
    version: str | None = Field(description='The latest version, a string ("1") as in the '
                                            'API reference')
    status: str | None
    created_at: datetime.datetime
    tags: dict[str, str]


class ModelList(BaseModel):
    models: list[ModelSummary]
    next_page_token: str | None


class ModelVersionOut(BaseModel):
    name: str
    version: int
    status: str
    stage: str
    aliases: list[str]
    description: str | None
    tags: dict[str, str]
    run_id: str | None
    source: str
    logged_model_id: str | None
    created_at: datetime.datetime
    last_updated_at: datetime.datetime | None


class UpdateBody(BodyModel):
    description: str | None = None
    tags: dict[str, str | None] = Field(
        default_factory=dict, description="Tags to set; a null value deletes the tag")


class Message(BaseModel):
    message: str


class TransitionBody(BodyModel):
    stage: Stage
    archive_existing: bool = False

    @pydantic.model_validator(mode="after")
    def _archive_only_into_a_live_stage(self):
        # MLflow archives the others only when moving into Staging or Production.
        if self.archive_existing and self.stage not in ("Staging", "Production"):
            raise ValueError("archive_existing applies only to a transition to Staging or "
                             "Production")
        return self


class RegisterBody(BodyModel):
    model_data: str = Field(description="Model URI: runs:/, models:/, mlflow-artifacts:/ or a "
                                        "location under the server's artifact root")
    model_name: str | None = Field(None, min_length=1, max_length=256, description=(
        "Default: derived from metadata.model_name, a models:/<name>/... URI, or "
        "<model_type or 'model'>-<run id> for a runs:/ URI; else 422"))
    model_type: str | None = Field(None, max_length=250)
    metadata: dict[str, Any] = Field(default_factory=dict, description="Becomes version tags")


class Registered(BaseModel):
    model_id: str = Field(description='"Name:Version"')
    model_name: str
    version: int
    logged_model_id: str | None
    registration_timestamp: datetime.datetime


class ProductionModel(BaseModel):
    name: str
    version: int
    stage: str
    aliases: list[str]
    deployed_at: datetime.datetime | None


class ProductionList(BaseModel):
    models: list[ProductionModel]


# --- batch --------------------------------------------------------------------

class _Operation(BodyModel):
    model: ModelRef


class TransitionOperation(_Operation):
    action: Literal["transition_stage"]
    stage: Stage
    archive_existing: bool = False


class SetTagOperation(_Operation):
    action: Literal["set_tag"]
    key: str = Field(min_length=1, max_length=250)
    value: str


class DeleteTagOperation(_Operation):
    action: Literal["delete_tag"]
    key: str = Field(min_length=1, max_length=250)


class DescriptionOperation(_Operation):
    action: Literal["update_description"]
    description: str


class DeleteOperation(_Operation):
    action: Literal["delete"]


BatchOperation = Annotated[
    TransitionOperation | SetTagOperation | DeleteTagOperation | DescriptionOperation
    | DeleteOperation,
    Field(discriminator="action")]


class BatchBody(BodyModel):
    operations: list[BatchOperation] = Field(min_length=1)


class BatchResult(BaseModel):
    index: int
    action: str
    model: str
    status: Literal["ok", "error"]
    status_code: int
    detail: str | None


class BatchOut(BaseModel):
    results: list[BatchResult]
    succeeded: int
    failed: int


# --- compare and metrics ------------------------------------------------------

class CompareQuery(QueryModel):
    model1: ModelRef
    model2: ModelRef


class ComparedVersion(BaseModel):
    name: str
    version: int
    run_id: str | None
    metrics: dict[str, float]


class Recommendation(BaseModel):
    model: str | None = Field(description='"Name:Version", or null for a tie or no basis')
    rule: Literal["benchmark_metric", "majority_of_known_metrics", "tie", "no_basis"]
    metric: str | None
    direction: Literal["higher", "lower"] | None
    reason: str


class Comparison(BaseModel):
    model1: ComparedVersion
    model2: ComparedVersion
    delta: dict[str, float] = Field(description="model2 - model1, for metrics both have")
    recommendation: str = Field(description='In words, as in the API reference: "Use version '
                                            '2 (...)" or "No recommendation: ..."')
    recommendation_detail: Recommendation


class Latency(BaseModel):
    count: int
    mean: float | None
    p50: float | None
    p90: float | None
    p95: float | None
    p99: float | None


class ProductionMetrics(BaseModel):
    total_predictions: int
    last_prediction_at: datetime.datetime | None
    latency_ms: Latency


class VersionMetrics(BaseModel):
    name: str
    version: int
    run_id: str | None
    training_metrics: dict[str, float]
    validation_metrics: dict[str, float]
    other_metrics: dict[str, float]
    production_metrics: ProductionMetrics


# --- predictions --------------------------------------------------------------

class PredictionRecord(BodyModel):
    timestamp: datetime.datetime | None = Field(None, description="Default: now")
    # At most a day: a mean over many records must stay a finite number.
    latency_ms: float | None = Field(None, ge=0, le=MAX_LATENCY_MS)


class RecordBody(BodyModel):
    predictions: list[PredictionRecord] = Field(min_length=1, max_length=1000)


class Recorded(BaseModel):
    recorded: int


class PredictionsQuery(QueryModel):
    start: datetime.date | None = None
    end: datetime.date | None = Field(None, description="Inclusive")


class DateRange(BaseModel):
    start: datetime.date | None
    end: datetime.date | None


class DailyCount(BaseModel):
    date: datetime.date
    count: int


class PredictionStats(BaseModel):
    total_predictions: int
    date_range: DateRange
    daily_counts: list[DailyCount]
    latency_ms: Latency


# --- evaluation ---------------------------------------------------------------

class EvaluateBody(BodyModel):
    model_name: str = Field(min_length=1)
    model_version: VersionNumber
    dataset_path: str = Field(min_length=1, description="runs:/ or mlflow-artifacts:/ URI, or a "
                                                        "path under HOKUSAI_EVALUATION_DATA_ROOT")
    target: str | None = Field(None, min_length=1, description=(
        "Column of true values. Default: the one dataset column the model's signature "
        "does not take, else a column named target, label or y; else 422"))
    metrics: list[str] = Field(min_length=1)

    @pydantic.field_validator("metrics")
    @classmethod
    def _known(cls, names: list[str]) -> list[str]:
        from mlflow_hokusai.plugins.models.evaluation import METRICS

        unknown = [n for n in names if n not in METRICS]
        if unknown:
            raise ValueError(f"unknown metric(s) {', '.join(unknown)}; known: "
                             f"{', '.join(METRICS)}")
        return list(dict.fromkeys(names))


class Evaluation(BaseModel):
    model_name: str
    model_version: int
    run_id: str
    target: str = Field(description="The target column used (given or inferred)")
    rows: int
    average: str | None = Field(description="Averaging of precision/recall/f1: binary or "
                                            "weighted")
    metrics: dict[str, float]
    sandbox: str = Field(description="Where the model's code ran: bwrap, process+netns or "
                                     "process (README: Sandbox)")
