"""Request and response bodies of the serving routes."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, model_validator

from mlflow_hokusai.rest import BodyModel, QueryModel

ModelName = Annotated[str, Field(min_length=1, max_length=256)]
Records = dict[str, Any] | Annotated[list[dict[str, Any]], Field(min_length=1, max_length=1000)]


class DeploymentPath(QueryModel):
    deployment_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]


class CreateDeployment(BodyModel):
    model_name: ModelName
    version: Annotated[int | None, Field(ge=1)] = None
    alias: Annotated[str | None, Field(min_length=1, max_length=256)] = None
    replicas: Annotated[int, Field(ge=1)] = 1
    reference_dataset: Annotated[str | None, Field(max_length=1000)] = None

    @model_validator(mode="after")
    def one_target(self):
        if (self.version is None) == (self.alias is None):
            raise ValueError("give exactly one of version and alias")
        return self


class DeploymentOut(BaseModel):
    deployment_id: str
    model_name: str
    version: int | None
    alias: str | None
    resolved_version: int | None
    status: str
    reason: str | None
    replicas: int
    ready_replicas: int
    restarts: int
    reference_dataset: str | None
    created_by: str | None
    created_at: int
    updated_at: int


class DeploymentList(BaseModel):
    deployments: list[DeploymentOut]


class DeploymentPredict(BodyModel):
    data: Records
    explain: bool = False


class PredictionOptions(BodyModel):
    return_probabilities: bool = True
    return_explanation: bool = False


class PredictionBody(BodyModel):
    model_id: ModelName
    version: int | Annotated[str, Field(max_length=257)] | None = None
    features: Records
    options: PredictionOptions = PredictionOptions()


class BatchBody(BodyModel):
    model_id: ModelName
    version: int | Annotated[str, Field(max_length=257)] | None = None
    input_path: Annotated[str, Field(min_length=1, max_length=1000)]
    output_path: Annotated[str, Field(min_length=1, max_length=1000)]
    batch_size: Annotated[int, Field(ge=1, le=10_000)] = 1000


class JobPath(QueryModel):
    job_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]


class JobOut(BaseModel):
    job_id: str
    model_id: str
    version: str | None
    status: str
    input_path: str
    output_path: str
    batch_size: int
    rows_total: int | None
    rows_done: int
    progress: float | None
    attempts: int
    error: str | None
    created_at: int
    updated_at: int


class DeploymentPrediction(BaseModel):
    """MLConnector's answer: ``explanation`` only when asked (else null)."""
    prediction: Any
    explanation: Any = None


class Prediction(BaseModel):
    """The ML Service's answer. ``probabilities`` (per class) and ``confidence``
    (the highest class probability) are null for models without probabilities."""
    request_id: str | None
    model_id: str
    version: int | None
    prediction: Any
    probabilities: Any = None
    confidence: Any = None
    latency_ms: float
    explanation: Any = None
