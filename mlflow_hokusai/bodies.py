"""The request-body limit, enforced by the adapters before the body is read.

MLflow reads every JSON body whole (``get_json(force=True)``, whatever the
Content-Type), and so do Hokusai's routes: without a limit one request can take
a worker's memory. A declared Content-Length over the limit is refused at once,
without reading the body; a chunked body (no Content-Length) is read up to the
limit and refused as soon as it passes it. Only the streaming artifact upload
(``PUT .../mlflow-artifacts/artifacts/<path>``) is exempt: it is written to the
artifact store as it arrives, never held.
"""

from __future__ import annotations

import re

from mlflow_hokusai.errors import PayloadTooLarge
from mlflow_hokusai.pipeline import RequestInfo
from mlflow_hokusai.plugins.auth.permissions import normalize

_STREAMED_UPLOAD = re.compile(r"/(?:api|ajax-api)/2\.0/mlflow-artifacts/artifacts/.+")


class BodyLimit:
    def __init__(self, max_mb: float):
        self.max_bytes = int(max_mb * 2**20)

    def applies(self, request: RequestInfo) -> bool:
        return not (request.method == "PUT" and _STREAMED_UPLOAD.fullmatch(normalize(request.path)))

    def error(self) -> PayloadTooLarge:
        # The rest of the body is never read: the connection cannot be reused.
        return PayloadTooLarge(f"Request body larger than {self.max_bytes // 2**20} MiB "
                               "(HOKUSAI_MAX_REQUEST_BODY_MB)", headers={"Connection": "close"})

    def declared_too_large(self, request: RequestInfo) -> bool:
        length = request.headers.get("content-length", "").strip()
        return length.isdigit() and int(length) > self.max_bytes

    @staticmethod
    def streams_undeclared(request: RequestInfo) -> bool:
        """A body of unknown size (chunked): it must be counted as it arrives."""
        return "content-length" not in request.headers and \
            "chunked" in request.headers.get("transfer-encoding", "").lower()
