"""Artifact throughput and stored bytes: MLflow's local repository vs hokusai+file://.

    .venv/bin/python -m benchmarks.bench_artifacts [--workers 2] [--rounds 3] [--concurrency 8]

Two servers, both the hokusai app on SQLite (so only the artifact repository
differs): one proxies to a plain directory (MLflow's LocalArtifactRepository),
the other to hokusai+file://. Each round uploads a fresh set of files (many
small, a few large) through the proxied artifact API, then downloads them all;
the figure is MB moved per second, medians of interleaved rounds. Then the same
model (with 32 MiB of weights) is logged twice through the MLflow client and
the bytes on disk are counted. Targets: throughput ratio >= 0.9; one stored
copy of the twice-logged model.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import requests

from benchmarks.common import interleaved, parse_args, print_table
from tests.support.servers import BIN, MlflowServer

MIB = 1024 * 1024
SMALL_FILES, SMALL_SIZE = 200, 16 * 1024
LARGE_FILES, LARGE_SIZE = 3, 64 * MIB
MODEL_WEIGHTS = 32 * MIB
API = "/api/2.0/mlflow-artifacts/artifacts"


def file_set() -> dict[str, bytes]:
    files = {f"small/{i:03d}.bin": os.urandom(SMALL_SIZE) for i in range(SMALL_FILES)}
    files.update({f"large/{i}.bin": os.urandom(LARGE_SIZE) for i in range(LARGE_FILES)})
    return files


def start(root: Path, name: str, artifacts_for, workers: int) -> tuple[MlflowServer, dict]:
    workdir = root / name
    workdir.mkdir()
    database = f"sqlite:///{workdir}/mlflow.db"
    created = subprocess.run([str(BIN / "hokusai"), "keys", "create", "--name", "bench",
                              "--rate-limit", "10000000/minute", "--json",
                              "--database-uri", database],
                             check=True, capture_output=True, text=True)
    headers = {"Authorization": f"Bearer {json.loads(created.stdout)['key']}"}
    server = MlflowServer(workdir, database, workers=workers, artifacts=artifacts_for(workdir))
    return server.start(), headers


def transfer(server: MlflowServer, headers: dict, files: dict[str, bytes],
             concurrency: int) -> float:
    """Upload every file, then download every file; MB per second over both.
    Under an experiment of the key's own: a proxied artifact path's first
    segment is the experiment whose permissions govern it."""
    session = requests.Session()
    session.headers.update(headers)
    created = session.post(f"{server.url}/api/2.0/mlflow/experiments/create",
                           json={"name": f"bench-{uuid.uuid4().hex}"}, timeout=60)
    created.raise_for_status()
    prefix = created.json()["experiment_id"]

    def put(item):
        path, data = item
        response = session.put(f"{server.url}{API}/{prefix}/{path}", data=data, timeout=600)
        response.raise_for_status()

    def get(path):
        with session.get(f"{server.url}{API}/{prefix}/{path}", stream=True,
                         timeout=600) as response:
            response.raise_for_status()
            size = sum(len(chunk) for chunk in response.iter_content(MIB))
        assert size == len(files[path])

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(put, files.items()))
        list(pool.map(get, files))
    elapsed = time.monotonic() - started
    return 2 * sum(len(data) for data in files.values()) / MIB / elapsed


def model_twice(server: MlflowServer, headers: dict) -> None:
    """Log one model (same weights) in two runs through the unmodified client."""
    import mlflow

    class Weights(mlflow.pyfunc.PythonModel):
        def __init__(self):
            self.weights = os.urandom(MODEL_WEIGHTS)

        def predict(self, context, model_input, params=None):
            return model_input

    model = Weights()
    os.environ["MLFLOW_TRACKING_TOKEN"] = headers["Authorization"].split()[1]
    mlflow.set_tracking_uri(server.url)
    mlflow.set_experiment(f"bench-model-{uuid.uuid4().hex}")  # the key's own (it may EDIT)
    for _ in range(2):
        with mlflow.start_run():
            mlflow.pyfunc.log_model(name="model", python_model=model, pip_requirements=[])
    mlflow.set_tracking_uri(None)


def disk_bytes(directory: Path) -> int:
    return sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())


def main():
    args = parse_args(__doc__)
    sides = {"stock local": lambda workdir: str(workdir / "artifacts"),
             "hokusai+file": lambda workdir: f"hokusai+file://{workdir / 'artifacts'}"}
    with tempfile.TemporaryDirectory() as tmp:
        servers: dict[str, tuple[MlflowServer, dict]] = {}
        try:
            for name, artifacts_for in sides.items():
                servers[name] = start(Path(tmp), name.replace(" ", "-"), artifacts_for,
                                      args.workers)
            warm_up = {f"warm/{i}.bin": os.urandom(2 * MIB) for i in range(8)}
            for server, headers in servers.values():  # every worker imports what it needs
                transfer(server, headers, warm_up, args.concurrency)
            file_sets: list[dict[str, bytes]] = []
            calls = dict.fromkeys(servers, 0)

            def measure(name):
                # A fresh file set per round, the same for both sides in that round.
                index, calls[name] = calls[name], calls[name] + 1
                while len(file_sets) <= index:
                    file_sets.append(file_set())
                return transfer(*servers[name], file_sets[index], args.concurrency)

            figures = interleaved(measure, list(servers), args.rounds)
            stored = {}
            for name, (server, headers) in servers.items():
                before = disk_bytes(server.workdir / "artifacts")
                model_twice(server, headers)
                stored[name] = (disk_bytes(server.workdir / "artifacts") - before) / MIB
        finally:
            for server, _ in servers.values():
                server.stop()
    print_table(f"Artifact upload+download through the server ({SMALL_FILES} x "
                f"{SMALL_SIZE // 1024} KiB + {LARGE_FILES} x {LARGE_SIZE // MIB} MiB), uvicorn "
                f"{args.workers} workers, {args.concurrency} clients, median of {args.rounds} "
                "rounds", figures, "stock local", unit="MB/s")
    print_table(f"Stored MiB after logging the same model ({MODEL_WEIGHTS // MIB} MiB of "
                "weights) twice", stored, "stock local", unit="MiB")


if __name__ == "__main__":
    main()
