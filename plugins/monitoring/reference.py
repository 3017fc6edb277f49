"""The reference data a drift report compares against, and which one it was.

In order: the deployment's ``reference_dataset`` (an artifact URI given when it
was created), the version's ``hokusai.reference_dataset`` tag, then the
training dataset the version's source run logged as an MLflow dataset input
(its source resolved to a file in the server's own artifact stores). Each is
read with plugins.models.datasets (size limit, allowed locations), at most
``max_rows`` rows (a seeded random sample beyond), and cached per location.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import time

import pandas as pd

from mlflow_hokusai.errors import NotFound
from mlflow_hokusai.plugins.models import datasets, registry

VERSION_TAG = "hokusai.reference_dataset"


@dataclasses.dataclass(frozen=True)
class Reference:
    frame: pd.DataFrame
    source: str  # deployment, version_tag or run_dataset
    uri: str
    digest: str  # sha256 of the rows read (before sampling)
    mlflow_digest: str | None = None  # the dataset input's own, for run_dataset

    def describe(self) -> dict:
        return {"source": self.source, "uri": self.uri, "digest": self.digest,
                "mlflow_digest": self.mlflow_digest, "rows": len(self.frame)}


def digest(frame: pd.DataFrame) -> str:
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes() + ",".join(map(str, frame.columns)).encode()).hexdigest()


def _bounded(frame: pd.DataFrame, max_rows: int) -> pd.DataFrame:
    return frame.sample(n=max_rows, random_state=0) if len(frame) > max_rows else frame


# A file under the data root may be replaced at the same path: a read is reused
# for up to REREAD_SECONDS, then read again (reports show the new digest).
REREAD_SECONDS = 300
clock = time.monotonic


def _read(uri: str, stored: bool, max_rows: int, settings) -> tuple[pd.DataFrame, str]:
    return _read_in_period(uri, stored, max_rows, settings, int(clock() // REREAD_SECONDS))


@functools.lru_cache(maxsize=16)
def _read_in_period(uri: str, stored: bool, max_rows: int, settings,
                    period: int) -> tuple[pd.DataFrame, str]:
    # ``period`` is only part of the key: a past period's reads are never hit
    # again, and the LRU pushes them out.
    frame = datasets.load_stored(uri, settings) if stored else datasets.load(uri, settings)
    return _bounded(frame, max_rows), digest(frame)


def resolve(model_name: str, version: int, explicit: str | None, settings) -> Reference:
    max_rows = settings.monitoring_max_rows
    if explicit:
        frame, sha = _read(explicit, False, max_rows, settings)
        return Reference(frame, "deployment", explicit, sha)
    tag = registry.get_version(model_name, version).tags.get(VERSION_TAG)
    if tag:
        frame, sha = _read(tag, False, max_rows, settings)
        return Reference(frame, "version_tag", tag, sha)
    for uri, mlflow_digest in datasets.logged_inputs(model_name, version):
        try:
            frame, sha = _read(uri, True, max_rows, settings)
        except Exception:  # noqa: BLE001 - an unreadable input is skipped, as serving does
            continue
        return Reference(frame, "run_dataset", uri, sha, mlflow_digest)
    raise NotFound(f"No reference data for {model_name!r} version {version}: give the "
                   "deployment a reference_dataset, tag the version "
                   f"{VERSION_TAG!r}, or log the training dataset as an input of its run")
