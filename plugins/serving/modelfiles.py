"""The files a model worker starts from, prepared by the server (which reads
the stores; the worker cannot): a copy of the version's model directory, its
signature's input columns, and SHAP background data as Parquet. Only files
are read here (MLmodel YAML, JSON, CSV/Parquet): no model code runs."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from mlflow_hokusai.plugins.models import artifacts, datasets

_logger = logging.getLogger(__name__)


def model_copy(name: str, version: int, directory: Path) -> Path:
    """The version's model files under ``directory/model`` (downloaded once)."""
    target = directory / "model"
    if (target / "MLmodel").is_file():
        return target
    directory.mkdir(parents=True, exist_ok=True)
    repo, base = artifacts.version_repository(name, version)
    scratch = tempfile.mkdtemp(dir=directory)
    try:
        artifacts.download_all(repo, artifacts.walk(repo, base), scratch)
        try:
            os.replace(scratch, target)
        except OSError:
            # Another thread of this worker downloaded it first (renaming onto
            # a non-empty directory fails): its copy is as good as ours.
            if not (target / "MLmodel").is_file():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def signature_columns(model_dir: Path) -> list[dict] | None:
    """[{"name", "type", "required"}] of a column-based input signature."""
    from mlflow.models import Model

    signature = Model.load(str(model_dir / "MLmodel")).signature
    inputs = signature.inputs if signature is not None else None
    if inputs is None or not inputs.has_input_names() or inputs.is_tensor_spec():
        return None
    return [{"name": spec.name, "type": getattr(spec.type, "name", str(spec.type)),
             "required": getattr(spec, "required", True)} for spec in inputs.inputs]


def _run_dataset(name: str, version: int, settings) -> pd.DataFrame | None:
    """The first dataset the source run logged as an input that the server can
    read: one whose source is in the server's own artifact stores."""
    for uri, _ in datasets.logged_inputs(name, version):
        try:
            return datasets.load_stored(uri, settings)
        except Exception as exc:  # noqa: BLE001 - an unreadable input is skipped
            _logger.info("%s %s: dataset %s not usable as background: %s", name, version, uri,
                         exc)
    return None


def background(name: str, version: int, reference: str | None, model_dir: Path,
               columns: list[dict] | None, settings) -> Path | None:
    """SHAP background data: the deployment's reference dataset, else the
    source run's logged training data, else the model's input example."""
    if reference:
        frame = datasets.load(reference, settings)
    else:
        frame = _run_dataset(name, version, settings)
    if frame is None:
        from mlflow.models import Model

        example = Model.load(str(model_dir / "MLmodel")).load_input_example(str(model_dir))
        frame = example if isinstance(example, pd.DataFrame) else None
    if frame is None:
        return None
    if columns:
        missing = [c["name"] for c in columns if c["name"] not in frame.columns]
        if missing:
            raise ValueError(f"Background data lacks the model's features {missing}")
        frame = frame[[c["name"] for c in columns]]
    path = model_dir.parent / "background.parquet"
    frame.to_parquet(path, index=False)
    return path
