"""``mlflow.server.get_app_client("hokusai", tracking_uri)``: key management and the
tokenized-model endpoints. Answers are plain dicts; HTTP errors raise
``HokusaiClientError`` with the status and the server's ``detail``.

Uses MLflow's own HTTP layer, so credentials come from the usual
``MLFLOW_TRACKING_TOKEN`` / ``MLFLOW_TRACKING_USERNAME``+``PASSWORD`` variables
and requests are retried the way MLflow retries its own.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote


class HokusaiClientError(Exception):
    def __init__(self, status: int, detail: Any):
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


class HokusaiClient:
    def __init__(self, tracking_uri: str):
        self.tracking_uri = tracking_uri

    def _request(self, method: str, endpoint: str, json: dict | None = None,
                 params: dict | None = None) -> Any:
        from mlflow.utils.credentials import get_default_host_creds
        from mlflow.utils.rest_utils import http_request

        response = http_request(get_default_host_creds(self.tracking_uri), endpoint, method,
                                json=json, params=params)
        try:
            body = response.json()
        except ValueError:
            body = response.text
        if response.status_code >= 400:
            detail = body.get("detail", body) if isinstance(body, dict) else body
            raise HokusaiClientError(response.status_code, detail)
        return body

    def create_key(self, name: str, *, scopes=("read", "write"), owner: str | None = None,
                   tier: str | None = None, rate_limit: str | None = None,
                   expires_in_days: float | None = None) -> dict:
        """The new key's record; its ``key`` field is the only copy of the secret."""
        body = {"name": name, "scopes": list(scopes), "owner": owner, "tier": tier,
                "rate_limit": rate_limit, "expires_in_days": expires_in_days}
        return self._request("POST", "/api/keys", {k: v for k, v in body.items() if v is not None})

    def list_keys(self) -> list[dict]:
        return self._request("GET", "/api/keys")["keys"]

    def revoke_key(self, key_id: str) -> dict:
        return self._request("DELETE", f"/api/keys/{key_id}")

    def rotate_key(self, key_id: str, *, grace_period_hours: float = 0) -> dict:
        return self._request("POST", f"/api/keys/{key_id}/rotate",
                             {"grace_period_hours": grace_period_hours})

    # -- per-resource permissions (plugins/auth/grants_api.py) ------------------
    # resource_type is "experiment" or "registered_model"; granting and revoking
    # need MANAGE on the resource (its owner, a MANAGE grant, or an admin key).
    _PERMISSIONS = "/api/3.0/mlflow/users/permissions"

    def grant_permission(self, username: str, resource_type: str, resource_id: str,
                         permission: str) -> None:
        self._request("POST", f"{self._PERMISSIONS}/grant", {
            "username": username, "resource_type": resource_type,
            "resource_id": str(resource_id), "permission": permission})

    def revoke_permission(self, username: str, resource_type: str, resource_id: str) -> None:
        self._request("POST", f"{self._PERMISSIONS}/revoke", {
            "username": username, "resource_type": resource_type,
            "resource_id": str(resource_id)})

    def get_permission(self, username: str, resource_type: str, resource_id: str) -> dict:
        """``{"allowed", "permission"}``: the level a request of ``username`` would get."""
        return self._request("GET", f"{self._PERMISSIONS}/get", params={
            "username": username, "resource_type": resource_type,
            "resource_id": str(resource_id)})

    def list_permissions(self, *, username: str | None = None,
                         resource_type: str | None = None,
                         resource_id: str | None = None) -> list[dict]:
        """Grants: your own, those on a resource you manage, or (admin) anyone's."""
        params = {"username": username, "resource_type": resource_type,
                  "resource_id": None if resource_id is None else str(resource_id)}
        return self._request("GET", f"{self._PERMISSIONS}/list",
                             params={k: v for k, v in params.items() if v is not None}
                             )["permissions"]

    # -- tokenized models (plugins/tokens) --------------------------------------
    def register_tokenized_model(self, model_uri: str, model_name: str, token_id: str,
                                 metric_name: str, baseline_value: float, *,
                                 contributor_address: str | None = None,
                                 description: str | None = None,
                                 tags: dict[str, str] | None = None) -> dict:
        """Register a version bound to ``token_id``; the answer's ``version`` is its number."""
        body = {"model_uri": model_uri, "model_name": model_name, "token_id": token_id,
                "metric_name": metric_name, "baseline_value": baseline_value,
                "contributor_address": contributor_address, "description": description,
                "tags": tags}
        return self._request("POST", "/api/models/register-tokenized",
                             {k: v for k, v in body.items() if v is not None})

    def get_model_by_token(self, token_id: str, *, max_results: int = 100,
                           page_token: str | None = None) -> dict:
        return self._request("GET", f"/api/models/by-token/{quote(token_id, safe='')}",
                             params=_page(max_results, page_token))

    def get_lineage(self, model_name: str, version: int | None = None, *,
                    max_results: int = 100, page_token: str | None = None) -> dict:
        """A model's improvement history, or with ``version`` that version's
        parents, training data and experiments."""
        name = quote(model_name, safe="")
        if version is not None:
            return self._request("GET", f"/api/models/{name}/{int(version)}/lineage")
        return self._request("GET", f"/api/models/{name}/lineage",
                             params=_page(max_results, page_token))

    def get_contributor_impact(self, address: str) -> dict:
        return self._request("GET", f"/api/models/contributors/{quote(address, safe='')}/impact")


def _page(max_results: int, page_token: str | None) -> dict:
    return {"max_results": max_results, **({"page_token": page_token} if page_token else {})}
