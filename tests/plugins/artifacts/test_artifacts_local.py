"""hokusai+file:// specifics behind a real server: a 1 GiB artifact streams up and
down within a bounded server memory, and the server refuses hokusai locations
outside its own roots."""

import hashlib
import os
import threading
import uuid

import psutil
import requests

GIB = 1024 ** 3
MIB = 1024 * 1024


def generated(total: int):
    """``total`` bytes made on the fly, 1 MiB at a time (never all in memory)."""
    block = bytearray(os.urandom(MIB))
    for index in range(total // MIB):
        block[:8] = index.to_bytes(8, "big")  # every chunk differs
        yield bytes(block)


def _serves_http(process: psutil.Process) -> bool:
    # MLflow's job runner and its huey consumers start (and grow) on their own
    # schedule; they never see an artifact byte.
    return not any("huey" in part or "_job_runner" in part for part in process.cmdline())


class RssSampler:
    """Peak resident-memory growth of each process serving HTTP (the `mlflow server`
    parent, uvicorn and its workers), sampled in the background."""

    def __init__(self, server_pid: int):
        root = psutil.Process(server_pid)
        self.processes = [p for p in [root, *root.children(recursive=True)] if _serves_http(p)]
        self.baseline = {p.pid: p.memory_info().rss for p in self.processes}
        self.peak = dict(self.baseline)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while not self._stop.wait(0.05):
            for process in self.processes:
                try:
                    self.peak[process.pid] = max(self.peak[process.pid],
                                                 process.memory_info().rss)
                except psutil.NoSuchProcess:
                    pass

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def growth(self) -> int:
        return max(self.peak[pid] - self.baseline[pid] for pid in self.baseline)


def test_one_gib_streams_up_and_down_in_bounded_memory(hokusai_file_store):
    store = hokusai_file_store
    headers = store.headers()
    path = f"memory-{uuid.uuid4().hex[:8]}/big.bin"
    sent = hashlib.sha256()

    def counted():
        for chunk in generated(GIB):
            sent.update(chunk)
            yield chunk

    with RssSampler(store.running.server.process.pid) as sampler:
        assert store.put(path, counted(), headers).status_code == 200
        received, size = hashlib.sha256(), 0
        with store.get(path, headers, stream=True) as response:
            assert response.status_code == 200
            for chunk in response.iter_content(MIB):
                received.update(chunk)
                size += len(chunk)
    assert size == GIB and received.hexdigest() == sent.hexdigest()
    assert sampler.growth() < 100 * MIB, f"server RSS grew by {sampler.growth() / MIB:.0f} MiB"

    # Give the space back: delete the path, collect without grace.
    listing = store.repository().list_artifacts(path.split("/")[0])
    assert [(f.path, f.file_size) for f in listing] == [(path, GIB)]
    store.repository().delete_artifacts(path.split("/")[0])
    store.gc("--grace-seconds", "0")
    assert not os.path.exists(store.repository().blobs.path(sent.hexdigest()))


def test_server_refuses_hokusai_locations_outside_its_roots(hokusai_file_store, tmp_path):
    store = hokusai_file_store
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "x.txt").write_text('{"sha256": "' + "0" * 64 + '", "size": 1}')
    with store.client() as client:
        experiment = client.create_experiment(
            f"out-{uuid.uuid4().hex[:8]}", artifact_location=f"hokusai+file://{tmp_path}")
        run = client.create_run(experiment)
    # A client may store any location on an experiment; the server, asked to read
    # it, must not go where it was not configured to.
    headers = store.headers("read")
    for route, params in (("/api/2.0/mlflow/artifacts/list", {}),
                          ("/get-artifact", {"path": "x.txt"})):
        response = requests.get(store.url + route, headers=headers, timeout=30,
                                params={"run_id": run.info.run_id, **params})
        assert response.status_code == 400, (route, response.status_code, response.text)
        assert "outside the server's artifact roots" in response.text
