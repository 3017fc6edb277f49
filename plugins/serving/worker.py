"""A deployment's model worker, its own process:
``python -m mlflow_hokusai.plugins.serving.worker --model-dir ... --fd N``.

The supervisor starts it with a stripped environment (sandbox.py); before
anything of the model is loaded it confines itself: an address-space limit,
no core files, and death with its parent. It then serves MLflow's scoring
server (``/ping``, ``/invocations``, from ``mlflow.pyfunc.scoring_server``)
with one more route, ``POST /hokusai/predict``, which adds probabilities and
SHAP explanations. Every call has a time bound: past it the worker exits, so
that a model stuck in a loop cannot keep its process (the supervisor starts a
new one).
"""

from __future__ import annotations

import argparse
import ctypes
import itertools
import math
import os
import resource
import signal
import sys
import threading
import time

EXIT_TIMEOUT = 124  # as timeout(1)
_PR_SET_PDEATHSIG = 1


def confine(memory_mb: int, parent: int) -> None:
    limit = memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


class Watchdog:
    """Ends the process if a call runs past ``seconds``. One thread watches the
    deadlines of the calls in progress: a timer thread started and cancelled
    per call cost the worker more CPU than a small model's prediction. It looks
    every ``tick`` seconds, so a call is ended at most that much later."""

    def __init__(self, seconds: float, tick: float = 0.1, exit=os._exit):
        self.seconds = seconds
        self.tick = tick
        self.exit = exit
        self._deadlines: dict[int, float] = {}
        self._calls = itertools.count()
        threading.Thread(target=self._watch, daemon=True, name="hokusai-watchdog").start()

    def __call__(self, work):
        call = next(self._calls)  # dict and count operations are atomic under the GIL
        self._deadlines[call] = time.monotonic() + self.seconds
        try:
            return work()
        finally:
            del self._deadlines[call]

    def _watch(self) -> None:
        while True:
            time.sleep(self.tick)
            # A copy in one C call: calls come and go in other threads meanwhile.
            if min(list(self._deadlines.values()), default=math.inf) < time.monotonic():
                self.exit(EXIT_TIMEOUT)


def build_app(model_dir: str, background: str | None, timeout: float):
    import pandas as pd
    from fastapi.responses import JSONResponse
    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc import load_model, scoring_server

    from mlflow_hokusai.plugins.serving.scorer import NoBackground, Scorer

    model = load_model(model_dir)
    frame = pd.read_parquet(background) if background else None
    scorer = Scorer(model, frame)
    app = scoring_server.init(model)
    watchdog = Watchdog(timeout)

    @app.post("/hokusai/predict")
    def predict(body: dict):
        try:
            return watchdog(lambda: scorer.predict(body["records"],
                                                   bool(body.get("probabilities")),
                                                   bool(body.get("explain"))))
        except NoBackground as exc:
            return JSONResponse({"error": str(exc)}, status_code=409)
        except (MlflowException, KeyError, ValueError, TypeError) as exc:
            return JSONResponse({"error": _message(exc)}, status_code=400)
        except Exception as exc:  # noqa: BLE001 - the model's own failure
            return JSONResponse({"error": _message(exc)}, status_code=500)

    return app


def _message(exc: Exception) -> str:
    text = exc.message if hasattr(exc, "message") else str(exc)
    return f"{type(exc).__name__}: {text}"[:1000]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--fd", type=int, required=True, help="listening socket")
    parser.add_argument("--background")
    parser.add_argument("--timeout", type=float, required=True)
    parser.add_argument("--memory-mb", type=int, required=True)
    parser.add_argument("--parent", type=int, required=True)
    args = parser.parse_args(argv)
    confine(args.memory_mb, args.parent)
    import uvicorn

    app = build_app(args.model_dir, args.background, args.timeout)
    uvicorn.run(app, fd=args.fd, log_level="warning", access_log=False)


if __name__ == "__main__":
    main(sys.argv[1:])
