"""Which resource each route touches and the permission level it needs there,
following MLflow basic-auth's validators (mlflow/server/auth/__init__.py,
``BEFORE_REQUEST_HANDLERS``), keyed like them by MLflow's request class.

Kinds (plugins.auth.ownership finds each one's experiment or registered model):
``experiment`` (``experiment_id``), ``experiment_name``, ``run`` (``run_id`` /
``run_uuid``), ``registered_model`` (``name``, or a path parameter),
``logged_model`` (``model_id``), ``artifact`` (a proxied artifact path, whose
first segment is its experiment), and the experiment's other children:
``trace``, ``label_schema``, ``review_queue``, ``issue``, ``scorer``,
``prompt_job`` (one experiment each) and ``dataset`` (judged on every experiment it is attached
to, as basic-auth does). ``job`` (MLflow's jobs API) is owned by the principal that
submitted it. ``CREATE`` needs only the scope.

Every MLflow route must be listed here, with access or in ``SERVER_WIDE``
(scope only); anything else is unclassified and refused (see mlflow_hokusai.routes).
"""

from __future__ import annotations

from mlflow_hokusai.routes import Access

READ, EDIT, MANAGE, CREATE = "READ", "EDIT", "MANAGE", "CREATE"
LEVELS = ("NO_PERMISSIONS", READ, EDIT, MANAGE)


def _table(kind: str, locator: str = "", many: bool = False,
           **levels: str) -> dict[str, Access]:
    return {name: Access(kind, level, locator, many) for level, names in levels.items()
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
    # The experiment's other children, levels as basic-auth's validators have them
    # (with no trace, assessment or scorer tiers of their own: the experiment's).
    **_table("experiment", "experiment_id",
             READ="ListScorers ListScorerVersions GetScorer GetReviewQueueByName SearchIssues",
             EDIT="StartTrace RegisterScorer CreateReviewQueue GetOrCreateUserQueue "
                  "CreatePromptOptimizationJob CreateIssue serve_create_promptlab_run "
                  "_upsert_online_scoring_config",
             # DeleteTraces: basic-auth falls back to the experiment's delete.
             MANAGE="DeleteTraces DeleteTracesV3 DeleteScorer CreateLabelSchema"),
    **_table("experiment", "trace.trace_info.trace_location.mlflow_experiment.experiment_id",
             EDIT="StartTraceV3"),
    **_table("trace", "request_id", READ="GetTraceInfo serve_get_trace_artifact",
             EDIT="EndTrace SetTraceTag DeleteTraceTag"),
    **_table("trace", "trace_id",
             READ="GetTraceInfoV3 GetTrace GetAssessmentRequest GetOnlineTraceDetails",
             # Deleting an assessment needs the experiment's update in basic-auth.
             EDIT="SetTraceTagV3 DeleteTraceTagV3 CreateAssessment "
                  "UpdateAssessment DeleteAssessment"),
    **_table("label_schema", "schema_id", READ="GetLabelSchema",
             MANAGE="UpdateLabelSchema DeleteLabelSchema"),
    # Basic-auth lets an EDIT holder update or prune a queue they created; here
    # that takes MANAGE (queues record no owner Hokusai could check).
    **_table("review_queue", "queue_id", READ="GetReviewQueue ListReviewQueueItems",
             EDIT="AddItemsToReviewQueue SetReviewQueueItemStatus",
             MANAGE="UpdateReviewQueue DeleteReviewQueue RemoveItemsFromReviewQueue"),
    **_table("issue", "issue_id", READ="GetIssue", EDIT="UpdateIssue"),
    **_table("prompt_job", "job_id", READ="GetPromptOptimizationJob",
             EDIT="CancelPromptOptimizationJob", MANAGE="DeletePromptOptimizationJob"),
    # MLflow's Flask app serves a job's get and cancel beside its jobs API (_NATIVE).
    **_table("job", "job_id", READ="_get_job", EDIT="_cancel_job"),
    **_table("dataset", "dataset_id",
             READ="GetDataset GetDatasetRecords GetDatasetExperimentIds",
             EDIT="SetDatasetTags DeleteDatasetTag UpsertDatasetRecords DeleteDatasetRecords "
                  "RemoveDatasetFromExperiments",
             MANAGE="DeleteDataset"),
    # Lists: every id named is judged.
    **_table("run", "run_id", many=True, READ="serve_get_metric_history_bulk"),
    **_table("run", "run_ids", many=True, READ="GetMetricHistoryBulkInterval"),
    **_table("trace", "trace_ids", many=True, READ="BatchGetTraces BatchGetTraceInfos"),
    **_table("scorer", "scorer_ids", many=True, READ="_get_online_scoring_configs"),
    **_table("experiment", "experiment_ids", many=True,
             READ="QueryTraceMetrics SearchDatasets serve_search_datasets "
                  "SearchEvaluationDatasets SearchUnifiedTraces CalculateTraceFilterCorrelation",
             EDIT="CreateDataset"),
    # Prompts are registered models: linking names each version, which must be readable.
    "LinkPromptsToTrace": Access("trace", EDIT, "trace_id", also=(
        Access("registered_model", READ, "prompt_versions[].name", many=True),)),
    "LinkTracesToRun": Access("run", EDIT, "run_id",
                              also=(Access("trace", READ, "trace_ids", many=True),)),
    # Scoring or analysing traces writes assessments (or issues) in the experiment.
    **{name: Access("experiment", EDIT, "experiment_id",
                    also=(Access("trace", READ, "trace_ids", many=True),))
       for name in ("_invoke_scorer_handler", "_invoke_issue_detection_handler",
                    "_invoke_genai_evaluate_handler")},
    # Attaching a dataset to an experiment writes there too (basic-auth: update on both).
    "AddDatasetToExperiments": Access("dataset", EDIT, "dataset_id", also=(
        Access("experiment", EDIT, "experiment_ids", many=True),)),
}

# The proxied artifact list shares ListArtifacts with the run's; told apart by path.
_ARTIFACT_LIST = Access("artifact", READ, "path")
_ARTIFACT_FASTAPI = {"GET": Access("artifact", READ, "artifact_path"),
                     "PUT": Access("artifact", EDIT, "artifact_path")}
# OTLP trace export names its experiment in MLflow's header (a list would be
# ambiguous: plugins.auth.authorize refuses a header given twice).
_OTLP = Access("experiment", EDIT, "header:x-mlflow-experiment-id",
               also=(Access("run", EDIT, "header:x-mlflow-run-id"),))  # links to that run
JOBS = "/ajax-api/3.0/jobs/"
# MLflow's jobs API: a job by its submitter (basic-auth: only the creator); its
# search is filtered in the answer (plugins.auth.authorize), submitting needs the scope.
_NATIVE = {("POST", "/v1/traces"): _OTLP,
           ("GET", JOBS + "{job_id}"): Access("job", READ, "job_id"),
           ("PATCH", JOBS + "cancel/{job_id}"): Access("job", EDIT, "job_id")}

# Routes with no per-resource check yet: the scope alone decides (searches are
# reads; the result filtering of plugins.auth is separate). Listed one by one so
# a route a newer MLflow adds is unclassified until someone judges it.
SERVER_WIDE = frozenset([
    "SearchExperiments", "SearchRuns", "SearchRegisteredModels", "SearchModelVersions",
    "SearchLoggedModels", "SearchTraces", "SearchTracesV3", "CreateGatewaySecret",
    "GetGatewaySecretInfo", "UpdateGatewaySecret", "DeleteGatewaySecret", "ListGatewaySecretInfos",
    "CreateGatewayEndpoint", "GetGatewayEndpoint", "UpdateGatewayEndpoint", "DeleteGatewayEndpoint",
    "ListGatewayEndpoints", "CreateGatewayModelDefinition", "GetGatewayModelDefinition",
    "ListGatewayModelDefinitions", "UpdateGatewayModelDefinition", "DeleteGatewayModelDefinition",
    "AttachModelToGatewayEndpoint", "DetachModelFromGatewayEndpoint",
    "CreateGatewayEndpointBinding", "DeleteGatewayEndpointBinding", "ListGatewayEndpointBindings",
    "SetGatewayEndpointTag", "DeleteGatewayEndpointTag", "CreateGatewayBudgetPolicy",
    "GetGatewayBudgetPolicy", "UpdateGatewayBudgetPolicy", "DeleteGatewayBudgetPolicy",
    "ListGatewayBudgetPolicies", "ListGatewayBudgetWindows", "CreateGatewayGuardrail",
    "GetGatewayGuardrail", "DeleteGatewayGuardrail", "ListGatewayGuardrails",
    "AddGuardrailToEndpoint", "RemoveGuardrailFromEndpoint", "ListEndpointGuardrailConfigs",
    "UpdateEndpointGuardrailConfig", "CreateWebhook", "ListWebhooks", "GetWebhook", "UpdateWebhook",
    "DeleteWebhook", "TestWebhook", "ListWorkspaces", "CreateWorkspace", "GetWorkspace",
    "UpdateWorkspace", "DeleteWorkspace", "_graphql", "_get_server_info",
    "_list_supported_providers", "_list_supported_models", "_get_provider_config",
    "_get_secrets_config", "_generate_demo", "_delete_demo",
    "serve_gateway_proxy", "serve_get_ui_telemetry", "serve_post_ui_telemetry", "static", "serve",
    "serve_static_file", "health", "version"
])

# FastAPI-native routes (uvicorn only), by template prefix: scope only.
NATIVE_SERVER_WIDE = ("/v1/traces", "/ajax-api/3.0/jobs", "/gateway/",
                      "/ajax-api/3.0/mlflow/assistant/", "/ajax-api/3.0/mlflow/mcp-servers",
                      "/api/3.0/mlflow/mcp-servers", "/ajax-api/3.0/mlflow/server-info",
                      "/api/3.0/mlflow/server-info", "/health")
_NATIVE_ARTIFACTS = ("/api/2.0/mlflow-artifacts/artifacts/",
                     "/ajax-api/2.0/mlflow-artifacts/artifacts/")

def _hokusai_template(template: str) -> str:
    return template[len("/api"):] if template.startswith("/api/") else template


def access_of(method: str, template: str, key: str, native: bool,
              declared: dict[tuple[str, str], Access]) -> Access | None:
    """``declared``: what Hokusai's own routes touch, as their plugins declared
    it to the route table (``RouteTable.declare``), by template without the
    /api prefix."""
    if native:
        if template.startswith(_NATIVE_ARTIFACTS):
            return _ARTIFACT_FASTAPI.get(method)
        return _NATIVE.get((method, template))
    if key == "ListArtifacts" and "mlflow-artifacts" in template:
        return _ARTIFACT_LIST
    return MLFLOW.get(key) or declared.get((method, _hokusai_template(template)))


def is_known(template: str, key: str, native: bool) -> bool:
    """Judged by someone: in one of the tables above, or one of Hokusai's own."""
    if native:
        return template.startswith(NATIVE_SERVER_WIDE + _NATIVE_ARTIFACTS)
    return key in MLFLOW or key in SERVER_WIDE or key == "ListArtifacts" or \
        key.startswith("hokusai")
