"""``mlflow.server.get_app_client("hokusai", tracking_uri)``: key management and the
tokenized-model endpoints. Answers are plain dicts; HTTP errors raise
``HokusaiClientError`` with the status and the server's ``detail``.

Uses MLflow's own HTTP layer, so credentials come from the usual
``MLFLOW_TRACKING_TOKEN`` / ``MLFLOW_TRACKING_USERNAME``+``PASSWORD`` variables.
Unlike MLflow's tracking calls it gives up within seconds on a server that is
down (``HokusaiServerUnreachable``): key management is done by a person waiting
at a prompt, not by a training job that should outlast a restart.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote


class HokusaiClientError(Exception):
    def __init__(self, status: int, detail: Any):
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


class HokusaiServerUnreachable(HokusaiClientError):
    """No answer at all: refused, unresolvable or timed out."""

    def __init__(self, tracking_uri: str, reason: str):
        super().__init__(0, f"Cannot reach the server at {tracking_uri}: {reason}")
        self.args = (self.detail,)

    def __str__(self) -> str:
        return self.detail


_OS_ERROR = re.compile(r"\[Errno -?\d+\] [^'\")]+|timed out|Name or service not known")


class HokusaiClient:
    # MLflow's defaults retry a refused connection for about four minutes.
    max_retries = 2
    backoff_factor = 0.5
    connect_timeout = 5.0

    def __init__(self, tracking_uri: str):
        self.tracking_uri = tracking_uri

    def _request(self, method: str, endpoint: str, json: dict | None = None,
                 params: dict | None = None, text: bool = False) -> Any:
        from mlflow.environment_variables import MLFLOW_HTTP_REQUEST_TIMEOUT
        from mlflow.exceptions import MlflowException
        from mlflow.utils.credentials import get_default_host_creds
        from mlflow.utils.rest_utils import http_request

        try:
            # raise_on_status=False: a 429 or 503 still retried too often is
            # answered with the server's own words below.
            response = http_request(
                get_default_host_creds(self.tracking_uri), endpoint, method,
                max_retries=self.max_retries, backoff_factor=self.backoff_factor,
                timeout=(self.connect_timeout, MLFLOW_HTTP_REQUEST_TIMEOUT.get()),
                raise_on_status=False, json=json, params=params)
        except MlflowException as error:  # http_request's wrapping of a transport failure
            reason = _OS_ERROR.search(error.message)
            raise HokusaiServerUnreachable(
                self.tracking_uri, reason.group(0).strip() if reason else "no answer") from None
        try:
            body = response.json()
        except ValueError:
            body = response.text
        if response.status_code >= 400:
            detail = body.get("detail", body) if isinstance(body, dict) else body
            raise HokusaiClientError(response.status_code, detail)
        return response.text if text else body

    def create_key(self, name: str, *, scopes=("read", "write"), owner: str | None = None,
                   tier: str | None = None, rate_limit: str | None = None,
                   expires_in_days: float | None = None) -> dict:
        """The new key's record; its ``key`` field is the only copy of the secret."""
        # A string is what the CLI and the REST API take too ("read" or "read,write").
        scopes = scopes if isinstance(scopes, str) else list(scopes)
        body = {"name": name, "scopes": scopes, "owner": owner, "tier": tier,
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
                                 tags: dict[str, str] | None = None,
                                 benchmark: dict | None = None) -> dict:
        """Register a version bound to ``token_id``; the answer's ``version`` is its
        number. ``benchmark``: the token's ``{"metric", "direction", "dataset_uri",
        "target_column"}``."""
        body = {"model_uri": model_uri, "model_name": model_name, "token_id": token_id,
                "metric_name": metric_name, "baseline_value": baseline_value,
                "contributor_address": contributor_address, "description": description,
                "tags": tags, "benchmark": benchmark}
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

    # -- benchmarks measured by the registry (plugins/benchmarks) ---------------
    def set_benchmark(self, token_id: str, metric: str, direction: str, dataset_uri: str,
                      target_column: str) -> dict:
        """Set a token's benchmark (MANAGE on its model); the server copies the dataset."""
        return self._request("PUT", f"/api/tokens/{quote(token_id, safe='')}/benchmark",
                             {"metric": metric, "direction": direction,
                              "dataset_uri": dataset_uri, "target_column": target_column})

    def get_benchmark(self, token_id: str) -> dict:
        return self._request("GET", f"/api/tokens/{quote(token_id, safe='')}/benchmark")

    def measure_benchmark(self, model_name: str, version: int) -> dict:
        """Have the registry measure a version on its token's benchmark (sandboxed)."""
        return self._request(
            "POST", f"/api/models/{quote(model_name, safe='')}/{int(version)}/benchmark")


    # -- proven contributor addresses (plugins/contributors) -----------------
    def contributor_challenge(self, address: str) -> dict:
        """``{"address", "nonce", "message", "expires_at"}``: the SIWE message to sign."""
        return self._request("POST", "/api/contributors/challenge", {"address": address})

    def link_contributor(self, message: str, signature: str) -> dict:
        """Hand back a challenge signed by the address's key (EIP-191 personal_sign)."""
        return self._request("POST", "/api/contributors/link",
                             {"message": message, "signature": signature})

    def prove_address(self, account) -> dict:
        """Challenge, sign with an eth-account ``LocalAccount`` and link, in one call."""
        from eth_account.messages import encode_defunct

        message = self.contributor_challenge(account.address)["message"]
        signed = account.sign_message(encode_defunct(text=message))
        return self.link_contributor(message, "0x" + signed.signature.hex().removeprefix("0x"))

    def my_contributor_links(self) -> dict:
        """``{"principal", "links": [{"address", "linked_at"}]}``."""
        return self._request("GET", "/api/contributors/me")

    def unlink_contributor(self, principal: str, address: str) -> dict:
        """Admin: remove a principal's proven link."""
        return self._request("DELETE", f"/api/contributors/links/{quote(principal, safe='')}/"
                             f"{address}")

    # -- the contribution ledger (plugins/ledger; admin) ----------------------
    def ledger_entries(self, *, token_id: str | None = None, since: int = 0,
                       limit: int | None = None) -> list[dict]:
        """Every entry after ``since`` (following pages), oldest first."""
        import json

        entries = []
        while True:
            params = {"since": since, **({"token_id": token_id} if token_id else {}),
                      **({"limit": limit} if limit else {})}
            lines = self._request("GET", "/api/ledger", params=params, text=True)
            page = [json.loads(line) for line in lines.splitlines() if line.strip()]
            entries.extend(page)
            if limit or not page or len(page) < 1000:
                return entries
            since = page[-1]["seq"]


def _page(max_results: int, page_token: str | None) -> dict:
    return {"max_results": max_results, **({"page_token": page_token} if page_token else {})}
