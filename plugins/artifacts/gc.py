"""``hokusai artifacts gc``: mark-and-sweep of blobs no mapping refers to.

Deleting artifacts removes mappings only (cheap, and safe while uploads run);
blobs are reclaimed here. Mark: read every mapping below the store root.
Sweep: delete each unreferenced blob that was neither written nor referenced
within the grace period. An upload publishes (or refreshes) its blob before it
writes the mapping, inside the same ``publish`` step, so a blob a concurrent
upload is about to reference is always younger than the grace period.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:  # the repository module loads MLflow's artifact machinery
    from mlflow_hokusai.plugins.artifacts.repository import HokusaiArtifactRepository


@dataclass
class Report:
    root: str
    mappings: int = 0
    referenced: int = 0
    blobs: int = 0
    deleted: int = 0
    young_kept: int = 0
    temp_removed: int = 0
    stored_bytes: int = 0
    dry_run: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def open_root(artifact_uri: str):
    """The repository at the store root of ``artifact_uri`` (which may be below it)."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    from mlflow_hokusai.plugins.artifacts import locations

    repository = cast("HokusaiArtifactRepository", get_artifact_repository(artifact_uri))
    if repository.blobs.root != repository.location.base:
        root = locations.Location(repository.location.scheme, repository.blobs.root)
        repository = cast("HokusaiArtifactRepository", get_artifact_repository(root.uri()))
    return repository


def collect(artifact_uri: str, grace_seconds: float, dry_run: bool = False) -> Report:
    repository = open_root(artifact_uri)
    blobs = repository.blobs
    cutoff = time.time() - grace_seconds  # fixed before the mark phase starts
    report = Report(root=repository.location.uri(), dry_run=dry_run)
    referenced = set()
    for blob in repository.manifest.walk():
        report.mappings += 1
        referenced.add(blob.digest)
    report.referenced = len(referenced)
    for digest, last_used in blobs.ages():
        report.blobs += 1
        if digest in referenced:
            continue
        if last_used >= cutoff:
            report.young_kept += 1
        elif dry_run or blobs.delete_if_older(digest, cutoff):
            report.deleted += 1  # with --dry-run: would be deleted
    if not dry_run:
        report.temp_removed = blobs.clean_temp(cutoff)
    report.stored_bytes = blobs.stored_bytes()
    return report


def init(artifact_uri: str) -> str:
    """Make ``artifact_uri`` a store root, so URIs below it share its blobs."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    from mlflow_hokusai.plugins.artifacts import locations

    location = locations.parse(artifact_uri)
    repository = cast("HokusaiArtifactRepository", get_artifact_repository(artifact_uri))
    if repository.blobs.root != location.base:
        raise ValueError(f"{artifact_uri} is already inside the store rooted at "
                         f"{locations.Location(location.scheme, repository.blobs.root).uri()}")
    repository.blobs.mark_root()
    return location.uri()
