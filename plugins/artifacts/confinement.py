"""Which artifact locations an experiment created through the server may have.

A client chooses an experiment's ``artifact_location``; the server later reads
and writes there with its own rights (artifact listing and downloads, model
registration, the models API). So inside a server process a location on the
server's own disk (a plain path or a ``file:`` URI) must resolve, symlinks and
``..`` included, to or below one of the server's plain local artifact roots.
``hokusai+file``/``hokusai+s3`` locations are checked where they are used
(locations.find_root); remote schemes (``s3://``, ``gs://``,
``mlflow-artifacts:/``...) are the remote store's business and pass. A client
using a ``hokusai+`` store URI directly works on its own disk and is not limited.
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

from mlflow.utils.file_utils import local_file_uri_to_path
from mlflow.utils.uri import get_uri_scheme

from mlflow_hokusai.plugins.artifacts import locations
from mlflow_hokusai.plugins.artifacts.locations import InvalidLocation

_LOCAL_SCHEMES = ("", "file")


def _local_path(uri: str) -> str:
    if get_uri_scheme(uri) == "file" and urlparse(uri).netloc not in ("", "localhost"):
        raise InvalidLocation("a file: URI with a host is not a local path of this server")
    try:
        return os.path.realpath(local_file_uri_to_path(uri))
    except ValueError:  # a NUL byte
        raise InvalidLocation("not a valid local path") from None


def local_roots(environ=os.environ) -> list[str]:
    """The server's artifact roots on its own disk (not ``hokusai+file``: its
    directory holds the content-addressed store, written only through the scheme)."""
    return [_local_path(value) for name in locations.SERVER_ROOT_ENV_VARS
            if (value := environ.get(name)) and get_uri_scheme(value) in _LOCAL_SCHEMES]


def check(uri: str, environ=os.environ) -> None:
    """Raise ``InvalidLocation`` if a server must not use ``uri``."""
    if locations.SERVER_PROCESS_ENV_VAR not in environ:
        return
    scheme = get_uri_scheme(uri)
    if scheme in _LOCAL_SCHEMES:
        path = _local_path(uri)
        if not any(locations.within(path, root) for root in local_roots(environ)):
            raise InvalidLocation("the local path is outside the server's artifact roots; use "
                                  "a location below them or a remote artifact store URI")
