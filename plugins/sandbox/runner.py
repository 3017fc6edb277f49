"""Runs INSIDE the sandbox, as a script of its own (``python -I runner.py JOB``):
loads the model in ``JOB/model`` with MLflow's pyfunc flavor, predicts on
``JOB/features.parquet`` and writes the predictions, or why it could not, to
``JOB/out/result.json``.

It imports only MLflow and pandas (never mlflow_hokusai: the sandbox can read
the interpreter and its site-packages, not the server's code or settings). It
never sees the labels: the server scores the predictions itself, so model code
that takes over this process can change its own predictions but not its score.
"""

import json
import os
import sys
import traceback


def _write(job: str, result: dict) -> None:
    with open(os.path.join(job, "out", "result.json"), "w") as handle:
        json.dump(result, handle)


def _plain(predictions) -> list:
    if hasattr(predictions, "to_numpy"):
        predictions = predictions.to_numpy()
    if getattr(predictions, "ndim", 1) > 1:
        predictions = predictions[:, 0] if predictions.shape[1] == 1 else predictions
    return [item.item() if hasattr(item, "item") else item for item in list(predictions)]


def main(job: str) -> int:
    try:
        import mlflow.pyfunc
        import pandas as pd

        features = pd.read_parquet(os.path.join(job, "features.parquet"))
        model = mlflow.pyfunc.load_model(os.path.join(job, "model"))
        _write(job, {"predictions": _plain(model.predict(features))})
        return 0
    except MemoryError:
        _write(job, {"error": "the model exceeded the sandbox's memory limit",
                     "type": "MemoryError"})
    except BaseException as exc:  # noqa: BLE001 - model code may raise anything, SystemExit included
        last = traceback.extract_tb(exc.__traceback__)[-1:]
        where = f" (at {os.path.basename(last[0].filename)}:{last[0].lineno})" if last else ""
        _write(job, {"error": f"{type(exc).__name__}: {exc}"[:500] + where,
                     "type": type(exc).__name__})
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
