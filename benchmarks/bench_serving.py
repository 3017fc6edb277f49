"""Serving: single-record predictions through hokusai's ``POST
/api/v1/predictions`` (API key, signature check, a model worker behind the
server, the prediction recorded) against ``mlflow models serve`` called
directly (``/invocations``), for the same scikit-learn model in one run.

    .venv/bin/python -m benchmarks.bench_serving [--seconds 10 --rounds 3 --concurrency 8]

Prints requests/s, p50/p99 latency and CPU milliseconds per prediction (all
processes of each side) of each side, and the ratios.
Target: hokusai >= 0.8 x direct throughput.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import mlflow
import pandas as pd
import requests
from mlflow.models import infer_signature
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from benchmarks.common import measure_mixes, parse_args
from tests.support.servers import BIN, MlflowServer, free_port


def _model(root: Path):
    x, y = make_classification(n_samples=200, n_features=8, random_state=0)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(8)])
    return LogisticRegression(max_iter=500).fit(frame, y), frame


def start_direct(model, frame, root: Path) -> tuple[subprocess.Popen, str]:
    path = root / "direct-model"
    mlflow.sklearn.save_model(model, str(path),
                              signature=infer_signature(frame, model.predict(frame)))
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "mlflow"), "models", "serve", "-m", str(path), "--env-manager", "local",
         "-p", str(port), "-h", "127.0.0.1"], stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,
        # It runs `uvicorn` by name: the virtualenv's bin must be on PATH.
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"})
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: requests.get(url + "/ping", timeout=2).ok)
    except RuntimeError:
        os.killpg(process.pid, 9)
        raise
    return process, url


def _wait(ready, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise RuntimeError("not ready in time")


def start_hokusai(model, frame, root: Path, workers: int) -> tuple[MlflowServer, str]:
    database = f"sqlite:///{root / 'mlflow.db'}"
    key = json.loads(subprocess.run(
        [str(BIN / "hokusai"), "keys", "bootstrap", "--json", "--database-uri", database],
        check=True, capture_output=True, text=True).stdout)["key"]
    server = MlflowServer(root / "hokusai", database, workers=workers, env={
        "HOKUSAI_SERVING_DIR": str(root / "serving"), "HOKUSAI_RATE_LIMITS_ENABLED": "false",
        "HOKUSAI_PREDICTION_LOG_SAMPLE_RATE": "0.1"}).start()
    os.environ["MLFLOW_TRACKING_TOKEN"] = key
    mlflow.set_tracking_uri(server.url)
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="model",
                                        signature=infer_signature(frame, model.predict(frame)))
    mlflow.register_model(info.model_uri, "bench")
    headers = {"X-API-Key": key}
    created = requests.post(server.url + "/api/deployment", headers=headers, timeout=60,
                            json={"model_name": "bench", "version": 1}).json()
    _wait(lambda: requests.get(f"{server.url}/api/deployment/{created['deployment_id']}",
                               headers=headers, timeout=5).json()["status"] == "ready")
    return server, key


def main():
    args = parse_args(__doc__)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        model, frame = _model(root)
        record = frame.iloc[0].to_dict()
        direct, direct_url = start_direct(model, frame, root)
        try:
            server, key = start_hokusai(model, frame, root, args.workers)
        except BaseException:
            os.killpg(direct.pid, 9)
            raise
        latencies: dict[str, list[float]] = {"direct": [], "hokusai": []}
        lock = threading.Lock()
        calls = {
            "direct": lambda s: s.post(direct_url + "/invocations", timeout=30,
                                       json={"dataframe_records": [record]}),
            "hokusai": lambda s: s.post(server.url + "/api/v1/predictions", timeout=30,
                                        headers={"X-API-Key": key},
                                        json={"model_id": "bench", "version": 1,
                                              "features": record}),
        }

        def mix(name):
            def for_thread(session):
                def one():
                    started = time.perf_counter()
                    status = calls[name](session).status_code
                    with lock:
                        latencies[name].append((time.perf_counter() - started) * 1000)
                    return status
                return one
            return for_thread

        # CPU of each side's processes: hokusai's server workers and the model
        # worker (a child of one of them), and `mlflow models serve` with its
        # uvicorn: on a small shared machine less noisy than throughput.
        cpu: dict[str, float] = {}
        try:
            rates, errors = measure_mixes(
                {"direct": (SimpleNamespace(process=direct), mix("direct")),
                 "hokusai": (server, mix("hokusai"))}, args, cpu)
        finally:
            server.stop()
            os.killpg(direct.pid, 9)  # `mlflow models serve` and its uvicorn
        if any(errors.values()):
            print(f"ERRORS in the last round (figures not comparable): {errors}")
        print("| path | requests/s | p50 ms | p99 ms | ratio vs direct | CPU ms/prediction "
              "| ratio |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for name in ("direct", "hokusai"):
            values = sorted(latencies[name])
            p99 = values[min(len(values) - 1, int(0.99 * len(values)))]
            print(f"| {name} | {rates[name]:.1f} | {statistics.median(values):.1f} | "
                  f"{p99:.1f} | {rates[name] / rates['direct']:.3f} | {cpu[name]:.2f} | "
                  f"{cpu[name] / cpu['direct']:.2f} |")


if __name__ == "__main__":
    main()
