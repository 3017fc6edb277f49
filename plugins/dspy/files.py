"""The files of a registered DSPy program, read by the server (which can read
the stores; the program's process cannot): whether a version is a DSPy
program (its ``MLmodel`` names the ``dspy`` flavor, read as YAML: no program
code runs), and a copy of its model directory for the program's process."""

from __future__ import annotations

import functools
import hashlib
import logging
import posixpath
import tempfile
from pathlib import Path

import yaml

from mlflow_hokusai.errors import HokusaiError
from mlflow_hokusai.plugins.models import artifacts
from mlflow_hokusai.plugins.serving.modelfiles import model_copy

FLAVOR = "dspy"
_logger = logging.getLogger(__name__)


def is_program(name: str, version: int) -> bool:
    """Whether the version is a DSPy program; False, and asked again next time,
    while its artifact store cannot be read (a transient failure must not hide
    a program from this worker until it restarts)."""
    try:
        return _is_program(name, version)
    except HokusaiError:
        raise  # the version is missing, or its files may not be read: the caller says so
    except Exception as exc:  # noqa: BLE001 - any store failure: not known yet
        _logger.info("Could not read the MLmodel of %s %s: %s", name, version, exc)
        return False


@functools.lru_cache(maxsize=4096)  # a version's files never change; failures raise, uncached
def _is_program(name: str, version: int) -> bool:
    repo, base = artifacts.version_repository(name, version)
    listed = {posixpath.basename(info.path) for info in repo.list_artifacts(base or None)
              if not info.is_dir}
    if "MLmodel" not in listed:
        return False
    with tempfile.TemporaryDirectory() as scratch:
        local = artifacts.download(repo, posixpath.join(base, "MLmodel") if base
                                   else "MLmodel", scratch)
        with open(local) as handle:
            try:
                document = yaml.safe_load(handle)
            except yaml.YAMLError:
                return False  # a broken MLmodel stays broken
    return isinstance(document, dict) and FLAVOR in (document.get("flavors") or {})


def program_copy(root: Path, name: str, version: int) -> Path:
    """``root/<name digest>/<version>/model``, downloaded once per worker."""
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    return model_copy(name, version, root / digest / str(version))
