"""Which deployment answers a prediction, remembered per server worker for
``HOKUSAI_SERVING_CACHE_SECONDS`` (under a second): resolving a model name and
version to a deployment takes three database reads (the registered model, the
version or alias, the deployment rows), more server time than the prediction
itself. Only ready deployments are remembered, so one that just became ready
is used at once; one deleted (or a model deleted) is still called for at most
that long, as the workers of a deleted deployment stop within a second anyway.
A call that finds the worker gone forgets the entry (a restarted worker has a
new address). When an entry expires, one thread of the worker reads it again
and the others that want it wait for that read: under load the requests in
flight missed together and each repeated the same three reads."""

from __future__ import annotations

import threading
import time

from mlflow_hokusai.errors import NotFound
from mlflow_hokusai.plugins.auth.ttlcache import TtlCache
from mlflow_hokusai.plugins.models import registry
from mlflow_hokusai.plugins.serving import resolve
from mlflow_hokusai.plugins.serving.store import READY

_STRIPES = 16


class DeploymentLookup:
    def __init__(self, store, ttl_seconds: float, clock=time.monotonic):
        self.store = store
        self._cache = TtlCache(ttl_seconds, clock) if ttl_seconds > 0 else None
        # Striped, not one lock per key: keys come from callers' input.
        self._reading = [threading.Lock() for _ in range(_STRIPES)]

    def _remembered(self, key, read, keep=lambda row: row is not None and row.status == READY):
        if self._cache is None:
            return read()
        found, value = self._cache.get(key)
        if found:
            return value
        with self._reading[hash(key) % _STRIPES]:
            found, value = self._cache.get(key)  # another thread's read, just done
            if not found:
                value = read()
                if keep(value):
                    self._cache.put(key, value)
        return value

    def for_model(self, name: str, ref):
        """The deployment serving ``ref`` (``3``, ``@alias``, None) of ``name``;
        404 when the model or a deployment of it does not exist."""
        def read():
            registry.registry_store().get_registered_model(name)  # 404 when missing
            return resolve.deployment_for(self.store, name, ref)
        return self._remembered(("model", name, resolve.parse(ref)), read)

    def by_id(self, deployment_id: str):
        row = self._remembered(("id", deployment_id), lambda: self.store.get(deployment_id))
        if row is None:
            raise NotFound(f"Deployment {deployment_id} does not exist")
        return row

    def root(self, deployment_id: str):
        """The permission check's root of a deployment: its registered model
        (None when the deployment does not exist). A rename of the model moves
        the deployment; for up to the cache's TTL after it, the check may still
        judge the old name."""
        def read():
            row = self.store.get(deployment_id)
            return ("registered_model", row.model_name) if row else None
        return self._remembered(("root", deployment_id), read, lambda root: root is not None)

    def forget(self) -> None:
        """After a call found a worker gone: read every deployment afresh."""
        if self._cache is not None:
            self._cache.clear()
