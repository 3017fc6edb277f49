"""Request and response bodies of the DSPy routes (the API reference's shapes)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from mlflow_hokusai.rest import BodyModel, QueryModel

ProgramId = Annotated[str, Field(min_length=1, max_length=300, description=(
    "A registered model's name, optionally with `:version` or `@alias`; by default the "
    "`production` alias, else the latest version"))]
Inputs = Annotated[dict[str, Any], Field(max_length=200)]
Mode = Literal["normal", "debug"]
Experiment = Annotated[str | None, Field(min_length=1, max_length=500, description=(
    "Experiment (by name) that receives the execution's MLflow trace; created when "
    "missing. Default: HOKUSAI_DSPY_EXPERIMENT"))]


# Listing a program loads it (a sandboxed process) to read its signatures: a
# page is bounded so that a read key cannot make a worker load hundreds.
MAX_LISTED = 50


class ProgramQuery(QueryModel):
    max_results: int = Field(MAX_LISTED, ge=1, le=MAX_LISTED)
    page_token: Annotated[str | None, Field(pattern=r"^[A-Za-z0-9+/=_-]{1,4096}$")] = None


class FieldOut(BaseModel):
    name: str
    type: str | None
    description: str | None


class SignatureOut(BaseModel):
    input_fields: list[FieldOut]
    output_fields: list[FieldOut]
    instructions: str | None = None


class ProgramOut(BaseModel):
    program_id: str
    name: str
    version: int
    signatures: list[SignatureOut]
    input_fields: list[str]
    description: str | None


class ProgramList(BaseModel):
    programs: list[ProgramOut]
    next_page_token: str | None


class ExecuteBody(BodyModel):
    program_id: ProgramId
    inputs: Inputs
    mode: Mode = "normal"
    timeout: Annotated[float | None, Field(gt=0, description=(
        "Seconds (default HOKUSAI_DSPY_TIMEOUT_SECONDS, at most "
        "HOKUSAI_DSPY_MAX_TIMEOUT_SECONDS)"))] = None
    experiment_name: Experiment = None


class ExecutionOut(BaseModel):
    execution_id: str | None
    success: bool
    outputs: dict[str, Any] | None
    error: str | None
    execution_time: float
    program_name: str
    metadata: dict[str, Any]


class BatchBody(BodyModel):
    program_id: ProgramId
    inputs_list: Annotated[list[Inputs], Field(min_length=1)]
    mode: Mode = "normal"
    timeout: Annotated[float | None, Field(gt=0)] = None
    experiment_name: Experiment = None


class BatchOut(BaseModel):
    batch_id: str
    total: int
    successful: int
    failed: int
    results: list[ExecutionOut]


class ExecutionPath(QueryModel):
    execution_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]


class ExecutionRecord(BaseModel):
    execution_id: str
    batch_id: str | None
    program_name: str
    version: int
    mode: str
    success: bool
    inputs: dict[str, Any]
    outputs: dict[str, Any] | None
    error: str | None
    execution_time: float
    principal: str | None
    trace_id: str | None
    created_at: int


class Statistics(BaseModel):
    total_executions: int
    success_rate: float
    average_execution_time: float


class StatsOut(BaseModel):
    statistics: Statistics
    cache_enabled: bool
    mlflow_tracking: bool
    cached_programs: int


class ClearBody(BodyModel):
    """No fields: the body may be empty or ``{}``."""


class MessageOut(BaseModel):
    message: str


class HealthOut(BaseModel):
    status: str
    total_executions: int
    success_rate: float
