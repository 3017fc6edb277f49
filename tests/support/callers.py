"""A principal calling a server with its key, granting permissions, and telling
a refusal from other errors."""

from __future__ import annotations

import requests

API = "/api/2.0/mlflow"


class Caller:
    def __init__(self, server, key: str):
        self.url, self.key = server.url, key

    def __call__(self, method: str, path: str, headers=None, **kwargs) -> requests.Response:
        return requests.request(method, self.url + path,
                                headers={**(headers or {}), "X-API-Key": self.key},
                                timeout=60, **kwargs)

    def ok(self, method: str, path: str, **kwargs) -> dict:
        response = self(method, path, **kwargs)
        assert response.status_code in (200, 201), (path, response.status_code, response.text)
        return response.json() if response.content else {}


def grant(caller: Caller, user: str, resource_type: str, resource_id: str, permission: str):
    caller.ok("POST", "/api/3.0/mlflow/users/permissions/grant",
              json={"username": user, "resource_type": resource_type,
                    "resource_id": resource_id, "permission": permission})


def is_refused(response) -> bool:
    """403 with MLflow's fields (every error carries them, Hokusai's REST routes too)."""
    if response.status_code != 403:
        return False
    body = response.json()
    return body.get("error_code") == "PERMISSION_DENIED" or \
        str(body.get("detail", "")).startswith("Permission denied")
