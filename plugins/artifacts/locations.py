"""Parse ``hokusai+file://`` and ``hokusai+s3://`` URIs and find the store root.

MLflow builds repositories for URIs *below* the one it was configured with
(``<root>/1/<run>/artifacts``, trace directories). Blobs must be shared by all
of them, so every repository first finds the store root, which holds the
``.hokusai`` area:

1. inside an ``mlflow server`` process, the server's own ``--artifacts-destination``
   or ``--default-artifact-root`` when the URI is at or below it; a URI outside
   every root of the server is refused (a client may store any location on an
   experiment, and the server must not read or write elsewhere with its rights);
2. elsewhere (a client resolving the URI directly), the nearest ancestor, the
   URI itself included, that holds a ``.hokusai`` marker;
3. else the URI itself (it becomes a root on its first write).
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote, urlparse

from mlflow_hokusai import mlflow_compat
from mlflow_hokusai.plugins.artifacts import paths

FILE_SCHEME = "hokusai+file"
S3_SCHEME = "hokusai+s3"
# What `mlflow server` exports to its workers (mlflow.server.constants).
SERVER_ROOT_ENV_VARS = mlflow_compat.ARTIFACT_ROOT_ENVS
# Marks a tracking-server process, as MLflow's own host policy decides it.
SERVER_PROCESS_ENV_VAR = mlflow_compat.ARTIFACT_ROOT_ENV


class InvalidLocation(ValueError):
    pass


@dataclass(frozen=True)
class Location:
    """A parsed URI. ``base`` is an absolute directory (file) or ``bucket/prefix`` (s3)."""

    scheme: str
    base: str

    @property
    def bucket(self) -> str:
        return self.base.split("/", 1)[0]

    @property
    def key_prefix(self) -> str:
        """The S3 key of ``base`` ('' at the bucket root)."""
        return self.base.split("/", 1)[1] if "/" in self.base else ""

    def uri(self) -> str:
        # base starts with "/" for files, so this is hokusai+file:///dir or hokusai+s3://b/p.
        return f"{self.scheme}://{self.base}"

    def relative_to(self, root: str) -> str:
        return "" if self.base == root else self.base[len(root):].lstrip("/")


def parse(uri: str) -> Location:
    parsed = urlparse(uri)
    if parsed.query or parsed.fragment or parsed.params:
        raise InvalidLocation("query strings, fragments and parameters are not allowed")
    try:
        if parsed.scheme == FILE_SCHEME:
            if parsed.netloc not in ("", "localhost"):
                raise InvalidLocation("hokusai+file:// takes no host: use hokusai+file:///abs/path")
            directory = unquote(parsed.path)
            if not directory.startswith("/"):
                raise InvalidLocation("hokusai+file:// needs an absolute path")
            relative = paths.clean(directory.lstrip("/"))
            return Location(FILE_SCHEME, "/" + relative)
        if parsed.scheme == S3_SCHEME:
            if not parsed.netloc:
                raise InvalidLocation("hokusai+s3:// needs a bucket: hokusai+s3://bucket/prefix")
            prefix = paths.clean(parsed.path.lstrip("/"))
            return Location(S3_SCHEME, paths.join(parsed.netloc, prefix))
    except paths.UnsafePath as exc:
        raise InvalidLocation(str(exc)) from None
    raise InvalidLocation(f"not a Hokusai artifact URI scheme: {parsed.scheme!r}")


def server_roots(scheme: str, environ=os.environ) -> list[str] | None:
    """The server's roots of this scheme, or None outside a server process."""
    if SERVER_PROCESS_ENV_VAR not in environ:
        return None
    roots = []
    for name in SERVER_ROOT_ENV_VARS:
        value = environ.get(name, "")
        if value.startswith(scheme + ":"):
            roots.append(parse(value).base)
    return roots


def within(base: str, root: str) -> bool:
    """``base`` is ``root`` or below it (both clean, "/"-separated)."""
    return base == root or base.startswith(root.rstrip("/") + "/")


def find_root(location: Location, has_marker: Callable[[str], bool],
              environ=os.environ) -> str:
    """The store root for ``location`` (see the module docstring)."""
    roots = server_roots(location.scheme, environ)
    if roots is not None:
        for root in sorted(roots, key=len, reverse=True):
            if within(location.base, root):
                return root
        raise InvalidLocation("this location is outside the server's artifact roots")
    candidate = location.base
    while candidate:
        if has_marker(candidate):
            return candidate
        parent = posixpath.dirname(candidate)
        # An S3 walk stops at the bucket (dirname of "bucket" is ""), a local one at "/".
        if parent == candidate or (location.scheme == S3_SCHEME and not parent):
            break
        candidate = parent
    return location.base
