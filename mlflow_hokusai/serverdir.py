"""A directory shared by the workers of one server and no one else.

The workers' parent (uvicorn's supervisor, gunicorn's arbiter, or ``mlflow
server`` itself with one worker) names it, so every worker of one server finds
the same directory and another server on the same machine gets its own.
"""

from __future__ import annotations

import os
import tempfile

from mlflow_hokusai.errors import ConfigurationError


def server_dir(kind: str) -> str:
    path = os.path.join(tempfile.gettempdir(), f"hokusai-{kind}-{os.getppid()}")
    os.makedirs(path, mode=0o700, exist_ok=True)
    # In a world-writable temp dir another account could have made it first.
    if os.stat(path).st_uid != os.getuid():
        raise ConfigurationError(f"{path} belongs to another user; remove it")
    return path
