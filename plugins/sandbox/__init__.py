"""Untrusted model code never runs in the server process: a model is loaded and
asked for predictions in a sandboxed child process (launch.py), which is given
a copy of the model's files and the dataset's feature columns and answers only
predictions; the server scores them. See launch.py for what each mode holds.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable

from mlflow_hokusai.errors import EvaluationRefused
from mlflow_hokusai.plugins.sandbox import launch

MAX_RESULT_BYTES = 256 * 2**20


def predict(fill_model: Callable[[str], None], features, settings) -> tuple[list, str]:
    """(predictions, sandbox mode) of the model ``fill_model(directory)`` puts
    in a directory, on the DataFrame ``features``. EvaluationRefused (422)
    says why when the model's code fails or is stopped at a limit."""
    sandbox = launch.mode(settings.sandbox_mode)
    job = tempfile.mkdtemp(prefix="hokusai-sandbox-")
    try:
        os.makedirs(os.path.join(job, "model"))
        os.makedirs(os.path.join(job, "out"))
        fill_model(os.path.join(job, "model"))
        features.to_parquet(os.path.join(job, "features.parquet"))
        try:
            launch.run(sandbox, job, timeout_seconds=settings.sandbox_timeout_seconds,
                       memory_mb=settings.sandbox_memory_mb)
        except launch.Stopped as stopped:
            raise EvaluationRefused(f"Model evaluation stopped ({sandbox} sandbox): "
                                    f"{stopped.reason}",
                                    reason=stopped.reason, sandbox=sandbox) from None
        return _result(os.path.join(job, "out", "result.json"), len(features), sandbox), sandbox
    finally:
        shutil.rmtree(job, ignore_errors=True)


def _result(path: str, rows: int, sandbox: str) -> list:
    def refused(reason: str):
        return EvaluationRefused(f"Model evaluation failed ({sandbox} sandbox): {reason}",
                                 reason=reason,
                                 sandbox=sandbox)

    if not os.path.isfile(path) or os.path.islink(path):
        raise refused("the model's process ended without an answer")
    if os.path.getsize(path) > MAX_RESULT_BYTES:
        raise refused("the model's answer is too large")
    try:
        with open(path) as handle:
            result = json.load(handle)
    except (ValueError, UnicodeDecodeError):
        raise refused("the model's answer is not JSON") from None
    if not isinstance(result, dict):
        raise refused("the model's answer is not an object")
    if "error" in result:
        raise refused(f"the model's code raised {str(result['error'])[:600]}")
    predictions = result.get("predictions")
    if not isinstance(predictions, list) or len(predictions) != rows:
        raise refused(f"the model answered no list of {rows} predictions")
    if not all(isinstance(p, (int, float, str, bool)) for p in predictions):
        raise refused("the model's predictions are not plain numbers or labels")
    return predictions
