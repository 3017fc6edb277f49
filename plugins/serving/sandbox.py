"""Starting a model worker process: what it inherits and what it does not.

The environment is built from an allow-list, not by removing known secrets:
database URIs, ``HOKUSAI_*`` settings, MLflow tracking credentials, cloud
credentials (``AWS_*``, ``GOOGLE_*``, ``AZURE_*``) and anything else the
server has are simply not passed. The model's files are copied into the
worker's directory by the server, so the worker needs no store access.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
from pathlib import Path

from mlflow_hokusai import tcp

# The worker ends a call a little after the server stops waiting for it, so the
# caller gets 504 (not a dropped connection) and the worker is restarted.
WATCHDOG_GRACE_SECONDS = 1.0
KEPT = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ")
# One thread per numeric library: replicas, not threads, are the unit of parallelism.
FIXED = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
         "MALLOC_ARENA_MAX": "2", "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1"}


def worker_environment(home: Path, environ=None) -> dict[str, str]:
    environ = os.environ if environ is None else environ
    env = {name: environ[name] for name in KEPT if name in environ}
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    return {**env, **FIXED, "HOME": str(home), "TMPDIR": str(home / "tmp")}


@dataclasses.dataclass
class Limits:
    timeout_seconds: float
    memory_mb: int


def listening_socket() -> socket.socket:
    """Bound and listening before the worker starts, so no other process can
    take the port between choosing it and using it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    tcp.no_delay(sock)  # the worker's uvicorn serves from it (mlflow_hokusai.tcp)
    sock.listen(128)
    return sock


def spawn(model_dir: Path, background: Path | None, home: Path, limits: Limits,
          log_path: Path) -> tuple[subprocess.Popen, str]:
    """The worker process and its ``host:port``."""
    sock = listening_socket()
    command = [sys.executable, "-m", "mlflow_hokusai.plugins.serving.worker",
               "--model-dir", str(model_dir), "--fd", str(sock.fileno()),
               "--timeout", str(limits.timeout_seconds + WATCHDOG_GRACE_SECONDS),
               "--memory-mb", str(limits.memory_mb),
               "--parent", str(os.getpid())]
    if background is not None:
        command += ["--background", str(background)]
    try:
        with open(log_path, "ab") as log:
            process = subprocess.Popen(command, cwd=home, env=worker_environment(home),
                                       stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT, pass_fds=(sock.fileno(),))
        host, port = sock.getsockname()
        return process, f"{host}:{port}"
    finally:
        sock.close()
