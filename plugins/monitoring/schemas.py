"""Query and body models of the monitoring routes (validation names the field)."""

from __future__ import annotations

import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mlflow_hokusai.rest import BodyModel, QueryModel

ModelName = Annotated[str, Field(min_length=1, max_length=256)]
# A version number or "@alias" (as /v1/predictions takes it); none: the production alias.
VersionRef = Annotated[str | None, Field(pattern=r"^(?:[1-9][0-9]{0,9}|@[^/]{1,255})$")]
MAX_PERIOD_HOURS = 24 * 366


class ModelPath(QueryModel):
    model_id: ModelName


class Window(QueryModel):
    """``since``/``until`` (ISO 8601; naive means UTC) or ``period_hours`` back from now."""
    since: datetime.datetime | None = None
    until: datetime.datetime | None = None
    period_hours: Annotated[float | None, Field(gt=0, le=MAX_PERIOD_HOURS)] = None

    @model_validator(mode="after")
    def one_window(self):
        if self.since is not None and self.period_hours is not None:
            raise ValueError("give since or period_hours, not both")
        if self.since and self.until and _utc(self.since) >= _utc(self.until):
            raise ValueError("since must be before until")
        return self


def _utc(moment: datetime.datetime) -> datetime.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)


def _split(value: Any) -> Any:
    """``features=a,b`` and ``features=a&features=b`` alike."""
    if isinstance(value, str):
        value = value.split(",")
    if isinstance(value, list):
        return [part.strip() for item in value for part in str(item).split(",") if part.strip()]
    return value


class DriftQuery(Window):
    version: VersionRef = None
    features: Annotated[list[Annotated[str, Field(max_length=256)]] | None,
                        Field(max_length=200)] = None
    method: Literal["auto", "psi"] = "auto"
    threshold: Annotated[float | None, Field(gt=0, lt=10)] = None
    format: Literal["json", "html", "png"] = "json"
    feature: Annotated[str | None, Field(max_length=256,
                                         description="The one feature a PNG shows")] = None

    _features = field_validator("features", mode="before")(_split)

    @model_validator(mode="after")
    def png_names_one(self):
        if self.format == "png" and not self.feature:
            raise ValueError("format=png draws one feature: give feature")
        if self.method == "auto" and self.threshold is not None and self.threshold >= 1:
            raise ValueError("threshold is a significance level (0-1) with method=auto")
        return self


class PerformanceQuery(Window):
    version: Annotated[int | None, Field(ge=1)] = None


Truth = str | int | float | bool


class FeedbackBody(BodyModel):
    request_id: Annotated[str, Field(min_length=1, max_length=64)]
    true_value: Truth | Annotated[list[Truth], Field(min_length=1, max_length=1000)] = Field(
        description="The true value, or one per record of a batch prediction")


class FeedbackOut(BaseModel):
    request_id: str
    model_id: str
    version: int | None
    records: int


class CheckBody(BodyModel):
    version: VersionRef = None
    interval_minutes: Annotated[float, Field(ge=0.05, le=60 * 24 * 31)] = 60.0
    period_hours: Annotated[float, Field(gt=0, le=MAX_PERIOD_HOURS)] = 24.0
    features: Annotated[list[Annotated[str, Field(min_length=1, max_length=256)]] | None,
                        Field(max_length=200)] = None
    method: Literal["auto", "psi"] = "auto"
    threshold: Annotated[float | None, Field(gt=0, lt=10)] = None
    log_to_mlflow: bool = False

    @model_validator(mode="after")
    def alpha_below_one(self):
        if self.method == "auto" and self.threshold is not None and self.threshold >= 1:
            raise ValueError("threshold is a significance level (0-1) with method=auto")
        return self


class CheckOut(BaseModel):
    model_id: str
    version: str | None
    interval_minutes: float
    period_hours: float
    features: list[str] | None
    method: str
    threshold: float
    log_to_mlflow: bool
    next_run_at: int
    created_by: str | None
    updated_at: int
    last_results: list[dict[str, Any]] = []


class FeatureDrift(BaseModel):
    feature: str
    drifted: bool | None = Field(description="null: not tested (too few samples)")
    statistic: float | None
    p_value: float | None
    p_value_adjusted: float | None = Field(description="Holm-Bonferroni over the features "
                                                       "tested; null for PSI")
    method: Literal["ks", "chi2", "psi"]
    reference_size: int
    current_size: int
    status: Literal["tested", "insufficient_data"]


class DriftReport(BaseModel):
    """Also ``format=html`` (text/html) and ``format=png`` (image/png)."""
    model_config = ConfigDict(extra="allow")
    model_id: str
    version: int
    overall_drift: bool | None = Field(description="null: no feature could be tested")
    status: Literal["tested", "insufficient_data"]
    features_checked: int
    features_drifted: int
    drifted_features: list[str]
    insufficient_features: list[str]
    features: dict[str, FeatureDrift]
    method: str
    threshold: float
    correction: Literal["holm"] | None
    reference: dict[str, Any]
    window: dict[str, int]


class PerformanceReport(BaseModel):
    model_config = ConfigDict(extra="allow")
    model_id: str
    version: int | None
    window: dict[str, int]
    requests: int
    records: int
    errors: int
    error_rate: float | None
    throughput_per_hour: float | None
    latency_ms: dict[str, float | int | None]
    hourly: list[dict[str, Any]]
    quality: dict[str, Any]
