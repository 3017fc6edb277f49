"""``mlflow.server.get_app_client("hokusai", tracking_uri)``: the key-management API.

Uses MLflow's own HTTP layer, so credentials come from the usual
``MLFLOW_TRACKING_TOKEN`` / ``MLFLOW_TRACKING_USERNAME``+``PASSWORD`` variables
and requests are retried the way MLflow retries its own.
"""

from __future__ import annotations

from typing import Any


class HokusaiClientError(Exception):
    def __init__(self, status: int, detail: Any):
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


class HokusaiClient:
    def __init__(self, tracking_uri: str):
        self.tracking_uri = tracking_uri

    def _request(self, method: str, endpoint: str, json: dict | None = None) -> Any:
        from mlflow.utils.credentials import get_default_host_creds
        from mlflow.utils.rest_utils import http_request

        response = http_request(get_default_host_creds(self.tracking_uri), endpoint, method,
                                json=json)
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
