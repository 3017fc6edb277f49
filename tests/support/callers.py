"""A principal calling a server with its key, granting permissions, and telling
a refusal from other errors."""

from __future__ import annotations

from http.cookiejar import DefaultCookiePolicy

import requests

API = "/api/2.0/mlflow"


class Http:
    """Requests to one base URL with fixed headers, over pooled connections: a
    new connection per request cost the server (and the suite) about a third of
    a small request's time. Cookies are never kept, so each request carries only
    what the test gives it, as with ``requests.request``. A call's own headers
    win over the fixed ones."""

    def __init__(self, base_url: str, headers: dict | None = None, timeout: float = 60):
        self.base_url, self.headers, self.timeout = base_url, headers or {}, timeout
        self.session = requests.Session()
        self.session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))

    def __call__(self, method: str, path: str, headers=None, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        return self.session.request(method, self.base_url + path,
                                    headers={**self.headers, **(headers or {})}, **kwargs)


class Caller(Http):
    def __init__(self, server, key: str):
        super().__init__(server.url, {"X-API-Key": key})
        self.url, self.key = server.url, key

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
