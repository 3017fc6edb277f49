"""Which resource each route touches and the permission level it needs there,
following MLflow basic-auth's validators (mlflow/server/auth/__init__.py,
``BEFORE_REQUEST_HANDLERS``), keyed like them by MLflow's request class.

Kinds (plugins.auth.access finds each one's experiment or registered model):
``experiment`` (``experiment_id``), ``experiment_name``, ``run`` (``run_id`` /
``run_uuid``), ``registered_model`` (``name``, or a path parameter),
``logged_model`` (``model_id``), ``artifact`` (a proxied artifact path, whose
first segment is its experiment). ``CREATE`` needs only the scope.

Every MLflow route must be listed here, with access or in ``SERVER_WIDE``
(scope only); anything else is unclassified and refused (see mlflow_hokusai.routes).
"""

from __future__ import annotations

from mlflow_hokusai.routes import Access

READ, EDIT, MANAGE, CREATE = "READ", "EDIT", "MANAGE", "CREATE"
LEVELS = ("NO_PERMISSIONS", READ, EDIT, MANAGE)


def _table(kind: str, locator: str = "", **levels: str) -> dict[str, Access]:
    return {name: Access(kind, level, locator) for level, names in levels.items()
            for name in names.split()}


MLFLOW: dict[str, Access] = {
    **_table("experiment", "experiment_id",
             READ="GetExperiment SearchPromptOptimizationJobs ListReviewQueues ListLabelSchemas "
                  "GetLabelSchemaByName",
             EDIT="SetExperimentTag DeleteExperimentTag CreateRun CreateLoggedModel",
             MANAGE="DeleteExperiment RestoreExperiment UpdateExperiment"),
    **_table("experiment_name", "experiment_name", READ="GetExperimentByName"),
    **_table("run", "run_id",
             READ="GetRun GetMetricHistory ListArtifacts CreatePresignedDownloadUrl "
                  "serve_artifacts",
             EDIT="UpdateRun LogMetric LogBatch LogInputs LogModel LogOutputs SetTag DeleteTag "
                  "LogParam CreatePresignedUploadUrl serve_upload_artifact",
             MANAGE="DeleteRun RestoreRun"),
    **_table("registered_model", "name",
             READ="GetRegisteredModel GetLatestVersions GetModelVersion "
                  "GetModelVersionDownloadUri GetModelVersionByAlias "
                  "serve_model_version_artifact",
             EDIT="UpdateRegisteredModel SetRegisteredModelTag DeleteRegisteredModelTag "
                  "CreateModelVersion UpdateModelVersion TransitionModelVersionStage "
                  "SetModelVersionTag DeleteModelVersionTag SetRegisteredModelAlias "
                  "DeleteRegisteredModelAlias",
             MANAGE="DeleteRegisteredModel RenameRegisteredModel DeleteModelVersion"),
    **_table("logged_model", "model_id",
             READ="GetLoggedModel ListLoggedModelArtifacts serve_get_logged_model_artifact",
             EDIT="FinalizeLoggedModel SetLoggedModelTags DeleteLoggedModelTag "
                  "LogLoggedModelParamsRequest",
             MANAGE="DeleteLoggedModel"),
    # The proxied artifact API: its path starts with the experiment's id.
    **_table("artifact", "artifact_path",
             READ="DownloadArtifact GetPresignedDownloadUrl",
             EDIT="UploadArtifact CreateMultipartUpload CompleteMultipartUpload "
                  "AbortMultipartUpload",
             MANAGE="DeleteArtifact"),
    **_table("create", CREATE="CreateExperiment CreateRegisteredModel"),
}

# The proxied artifact list shares ListArtifacts with the run's; told apart by path.
_ARTIFACT_LIST = Access("artifact", READ, "path")
_ARTIFACT_FASTAPI = {"GET": Access("artifact", READ, "artifact_path"),
                     "PUT": Access("artifact", EDIT, "artifact_path")}

# Routes with no per-resource check yet: the scope alone decides (searches are
# reads; the result filtering of plugins.auth is separate). Listed one by one so
# a route a newer MLflow adds is unclassified until someone judges it.
SERVER_WIDE = frozenset("""
SearchExperiments SearchRuns SearchRegisteredModels SearchModelVersions SearchLoggedModels
SearchDatasets SearchEvaluationDatasets SearchTraces SearchTracesV3 SearchUnifiedTraces
SearchIssues GetMetricHistoryBulkInterval serve_get_metric_history_bulk serve_search_datasets
StartTrace StartTraceV3 EndTrace GetTraceInfo GetTraceInfoV3 GetTrace BatchGetTraces
BatchGetTraceInfos DeleteTraces DeleteTracesV3 SetTraceTag SetTraceTagV3 DeleteTraceTag
DeleteTraceTagV3 LinkTracesToRun LinkPromptsToTrace GetOnlineTraceDetails
CalculateTraceFilterCorrelation QueryTraceMetrics serve_get_trace_artifact
GetAssessmentRequest CreateAssessment UpdateAssessment DeleteAssessment
CreateIssue UpdateIssue GetIssue CreateLabelSchema GetLabelSchema UpdateLabelSchema
DeleteLabelSchema CreateDataset GetDataset DeleteDataset SetDatasetTags DeleteDatasetTag
UpsertDatasetRecords GetDatasetExperimentIds GetDatasetRecords DeleteDatasetRecords
AddDatasetToExperiments RemoveDatasetFromExperiments
RegisterScorer ListScorers ListScorerVersions GetScorer DeleteScorer
CreateGatewaySecret GetGatewaySecretInfo UpdateGatewaySecret DeleteGatewaySecret
ListGatewaySecretInfos CreateGatewayEndpoint GetGatewayEndpoint UpdateGatewayEndpoint
DeleteGatewayEndpoint ListGatewayEndpoints CreateGatewayModelDefinition
GetGatewayModelDefinition ListGatewayModelDefinitions UpdateGatewayModelDefinition
DeleteGatewayModelDefinition AttachModelToGatewayEndpoint DetachModelFromGatewayEndpoint
CreateGatewayEndpointBinding DeleteGatewayEndpointBinding ListGatewayEndpointBindings
SetGatewayEndpointTag DeleteGatewayEndpointTag CreateGatewayBudgetPolicy
GetGatewayBudgetPolicy UpdateGatewayBudgetPolicy DeleteGatewayBudgetPolicy
ListGatewayBudgetPolicies ListGatewayBudgetWindows CreateGatewayGuardrail GetGatewayGuardrail
DeleteGatewayGuardrail ListGatewayGuardrails AddGuardrailToEndpoint RemoveGuardrailFromEndpoint
ListEndpointGuardrailConfigs UpdateEndpointGuardrailConfig
CreatePromptOptimizationJob GetPromptOptimizationJob CancelPromptOptimizationJob
DeletePromptOptimizationJob CreateReviewQueue GetOrCreateUserQueue GetReviewQueue
GetReviewQueueByName UpdateReviewQueue DeleteReviewQueue AddItemsToReviewQueue
RemoveItemsFromReviewQueue ListReviewQueueItems SetReviewQueueItemStatus
_get_online_scoring_configs _upsert_online_scoring_config
CreateWebhook ListWebhooks GetWebhook UpdateWebhook DeleteWebhook TestWebhook
ListWorkspaces CreateWorkspace GetWorkspace UpdateWorkspace DeleteWorkspace
_graphql _get_server_info _list_supported_providers _list_supported_models _get_provider_config
_get_secrets_config _invoke_scorer_handler _generate_demo _delete_demo
_invoke_issue_detection_handler _invoke_genai_evaluate_handler _cancel_job _get_job
serve_create_promptlab_run serve_gateway_proxy serve_get_ui_telemetry serve_post_ui_telemetry
static serve serve_static_file health version
""".split())

# FastAPI-native routes (uvicorn only), by template prefix: scope only.
NATIVE_SERVER_WIDE = ("/v1/traces", "/ajax-api/3.0/jobs", "/gateway/",
                      "/ajax-api/3.0/mlflow/assistant/", "/ajax-api/3.0/mlflow/mcp-servers",
                      "/api/3.0/mlflow/mcp-servers", "/ajax-api/3.0/mlflow/server-info",
                      "/api/3.0/mlflow/server-info", "/health")
_NATIVE_ARTIFACTS = ("/api/2.0/mlflow-artifacts/artifacts/",
                     "/ajax-api/2.0/mlflow-artifacts/artifacts/")

# Hokusai's own routes that touch one registered model, by template without
# the /api prefix; the path parameter that names the model comes first.
HOKUSAI: dict[tuple[str, str], Access] = {}


def declare(method: str, template: str, access: Access) -> None:
    """For plugins: what one of their routes touches."""
    HOKUSAI[(method, template)] = access


def _hokusai_template(template: str) -> str:
    return template[len("/api"):] if template.startswith("/api/") else template


def access_of(method: str, template: str, key: str, native: bool) -> Access | None:
    if native:
        if template.startswith(_NATIVE_ARTIFACTS):
            return _ARTIFACT_FASTAPI.get(method)
        return None
    if key == "ListArtifacts" and "mlflow-artifacts" in template:
        return _ARTIFACT_LIST
    return MLFLOW.get(key) or HOKUSAI.get((method, _hokusai_template(template)))


def is_known(template: str, key: str, native: bool) -> bool:
    """Judged by someone: in one of the tables above, or one of Hokusai's own."""
    if native:
        return template.startswith(NATIVE_SERVER_WIDE + _NATIVE_ARTIFACTS)
    return key in MLFLOW or key in SERVER_WIDE or key == "ListArtifacts" or \
        key.startswith("hokusai")
