"""A deployment's model worker, its own process:
``python -m mlflow_hokusai.plugins.serving.worker --model-dir ... --fd N``.

The supervisor starts it with a stripped environment (sandbox.py); before
anything of the model is loaded it confines itself: an address-space limit,
no core files, and death with its parent. It then loads the model with
``mlflow.pyfunc.load_model`` and answers ``GET /ping`` and ``POST
/hokusai/predict`` (pyfunc's ``predict`` with MLflow's schema enforcement,
plus probabilities and SHAP explanations: scorer.py). Every call has a time
bound: past it the worker exits, so that a model stuck in a loop cannot keep
its process (the supervisor starts a new one).
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import functools
import itertools
import json
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
    from mlflow.pyfunc import load_model

    from mlflow_hokusai.plugins.serving.scorer import Scorer

    model = load_model(model_dir)
    frame = pd.read_parquet(background) if background else None
    scorer = Scorer(model, frame)
    return WorkerApp(functools.partial(answer, scorer, Watchdog(timeout)))


def answer(scorer, watchdog: Watchdog, body: bytes) -> tuple[int, dict]:
    """One ``/hokusai/predict`` call: its status and JSON answer."""
    from mlflow.exceptions import MlflowException

    from mlflow_hokusai.plugins.serving.scorer import NoBackground

    try:
        call = json.loads(body)
        records = call["records"]
        return 200, watchdog(lambda: scorer.predict(records, bool(call.get("probabilities")),
                                                    bool(call.get("explain"))))
    except NoBackground as exc:
        return 409, {"error": str(exc)}
    except (MlflowException, KeyError, ValueError, TypeError) as exc:
        return 400, {"error": _message(exc)}
    except Exception as exc:  # noqa: BLE001 - the model's own failure
        return 500, {"error": _message(exc)}


class WorkerApp:
    """The worker's two routes, ``GET /ping`` and ``POST /hokusai/predict``, as
    a bare ASGI app. MLflow's scoring-server app (FastAPI) around them cost the
    worker more CPU per single-record call than pyfunc's ``predict`` with its
    schema enforcement (see the serving benchmark in the README); the model is
    still loaded and called through pyfunc."""

    def __init__(self, predict):
        self.predict = predict  # body bytes -> (status, JSON-able answer)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return  # uvicorn runs it with lifespan off
        route = scope["method"], scope["path"]
        if route == ("GET", "/ping"):
            status, answer = 200, {}
        elif route == ("POST", "/hokusai/predict"):
            body = await _body(receive)
            # In a thread: /ping answers while a slow model computes.
            status, answer = await asyncio.get_running_loop().run_in_executor(
                None, self.predict, body)
        else:
            status, answer = 404, {"error": f"No route {route[0]} {route[1]}"}
        try:
            data = json.dumps(answer, allow_nan=False).encode()
        except ValueError:  # strict JSON, as the scoring server answered
            status, data = 500, b'{"error": "The model returned NaN or infinity"}'
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(data)).encode())]})
        await send({"type": "http.response.body", "body": data})


async def _body(receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


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
    uvicorn.run(app, fd=args.fd, log_level="warning", access_log=False, lifespan="off")


if __name__ == "__main__":
    main(sys.argv[1:])
