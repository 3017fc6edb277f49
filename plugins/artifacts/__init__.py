"""Content-addressed, verified, streaming artifact repositories: ``hokusai+file://``
and ``hokusai+s3://`` (the ``mlflow.artifact_repository`` entry points).

Import-light on purpose: MLflow loads entry points while its artifact registry
is still being imported, so the repository classes (which import MLflow's
artifact modules and boto3) are imported when a repository is built.
"""

from __future__ import annotations


def file_repository(artifact_uri: str, tracking_uri: str | None = None,
                    registry_uri: str | None = None):
    from mlflow_hokusai.plugins.artifacts.repository import HokusaiLocalArtifactRepository

    return HokusaiLocalArtifactRepository(artifact_uri, tracking_uri, registry_uri)


def s3_repository(artifact_uri: str, tracking_uri: str | None = None,
                  registry_uri: str | None = None):
    from mlflow_hokusai.plugins.artifacts.repository import HokusaiS3ArtifactRepository

    return HokusaiS3ArtifactRepository(artifact_uri, tracking_uri, registry_uri)
