"""Calls from a server worker to a deployment's model workers, and what each
way of failing is answered with: 504 past the time bound, 502 when the worker
crashed or the model raised, 422 for input the model refused, 503 while the
deployment is starting or failed."""

from __future__ import annotations

import itertools
import json

import urllib3
from urllib3.exceptions import HTTPError, NewConnectionError, TimeoutError

from mlflow_hokusai.errors import (
    BadGateway,
    Conflict,
    GatewayTimeout,
    ServiceUnavailable,
    ValidationFailed,
)
from mlflow_hokusai.plugins.serving.store import FAILED


class WorkerClient:
    def __init__(self, timeout_seconds: float, retry_after: int):
        self.timeout = timeout_seconds
        self.retry_after = retry_after
        # One pool of kept-alive connections per model worker address, shared by
        # the server worker's threads. urllib3 directly: requests' per-call work
        # (proxy settings read from the environment, hooks, cookies) cost the
        # server more than the call itself; a loopback call needs none of it.
        self.pool = urllib3.PoolManager(num_pools=64, maxsize=16, retries=False,
                                        timeout=urllib3.Timeout(connect=2, read=timeout_seconds))
        self._turn = itertools.count()

    def _address(self, deployment) -> str:
        addresses = deployment.addresses
        if deployment.status == FAILED:
            raise ServiceUnavailable(f"Deployment {deployment.id} failed: {deployment.reason}",
                                     retry_after=self.retry_after)
        if not addresses:
            raise ServiceUnavailable(f"Deployment {deployment.id} is {deployment.status}",
                                     retry_after=self.retry_after)
        return addresses[next(self._turn) % len(addresses)]

    def predict(self, deployment, records: list[dict], probabilities: bool,
                explain: bool) -> dict:
        address = self._address(deployment)
        body = json.dumps({"records": records, "probabilities": probabilities,
                           "explain": explain}).encode()
        try:
            answer = self.pool.request("POST", f"http://{address}/hokusai/predict", body=body,
                                       headers={"Content-Type": "application/json"})
        except HTTPError as exc:
            # A refused connection is a timeout to urllib3 (NewConnectionError).
            if isinstance(exc, TimeoutError) and not isinstance(exc, NewConnectionError):
                raise GatewayTimeout(
                    f"The model did not answer within {self.timeout:g}s") from None
            raise BadGateway("The model worker crashed or is restarting") from None
        if answer.status == 200:
            return json.loads(answer.data)
        error = _error(answer)
        if answer.status == 400:
            raise ValidationFailed([{"loc": ["body", "features"], "msg": error,
                                     "type": "model_input"}])
        if answer.status == 409:
            raise Conflict(error)
        raise BadGateway(f"The model failed: {error}")


def _error(answer) -> str:
    try:
        parsed = json.loads(answer.data)
        return str(parsed.get("error") or parsed)[:1000]
    except (ValueError, AttributeError):  # not JSON, or JSON but not an object
        return answer.data.decode("utf-8", "replace")[:1000]
