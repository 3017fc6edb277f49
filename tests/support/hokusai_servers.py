"""Hokusai servers as the tests start them: the tests' settings, the first admin
key made by the CLI, and the database its keys live in."""

from __future__ import annotations

import json
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from mlflow_hokusai.db.engine import get_engine, to_sqlalchemy_url
from mlflow_hokusai.plugins.auth.keystore import KeyStore
from tests.support.jwt_keys import JWT_SECRET
from tests.support.servers import BIN, MlflowServer

# The session's shared servers (conftest.py's fixtures of these names).
SERVERS = ["uvicorn_sqlite", "gunicorn_postgres", "uvicorn_postgres", "hokusai_scheme"]
SERVER_KINDS = ["uvicorn_sqlite", "gunicorn_postgres"]


@dataclass
class RunningServer:
    """A started server, the database its keys live in, and the admin key."""

    server: MlflowServer
    database_uri: str
    admin_key: str
    name: str
    data_root: Path | None = None  # HOKUSAI_EVALUATION_DATA_ROOT

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def keystore(self) -> KeyStore:
        return KeyStore(get_engine(to_sqlalchemy_url(self.database_uri)))

    def create_key(self, scopes="read,write", **kwargs) -> str:
        return self.keystore.create(f"test-{uuid.uuid4().hex[:6]}", scopes=scopes, **kwargs)[1]


def start_server(tmp_path_factory, name, backend_uri, *, server, hokusai_db=None, jwt_public=None,
                 admin_key=None, artifacts=None, extra_env=None):
    workdir = tmp_path_factory.mktemp(name)
    env = {"HOKUSAI_JWT_SECRET": JWT_SECRET, "HOKUSAI_JWT_AUDIENCE": "hokusai-tests",
           # These servers take many wrong keys on purpose; the lockout that would
           # follow is tested on servers of its own (test_rate_limits.py).
           "HOKUSAI_AUTH_FAILURE_LIMIT": "100000/minute",
           # Evaluation datasets: a data root of the server's own, and a limit
           # small enough that a test can exceed it cheaply.
           "HOKUSAI_EVALUATION_DATA_ROOT": str(workdir / "data"),
           "HOKUSAI_EVALUATION_MAX_DATASET_MB": "1",
           # Audit spools inside the test's own directory, not the shared temp dir.
           "HOKUSAI_AUDIT_SPOOL_DIR": str(workdir / "audit-spool"),
           # The shared servers' stories credit addresses no key proved (a private
           # deployment's setting); the proof rule is tested on a server of its
           # own (test_contributors_e2e.py).
           "HOKUSAI_REQUIRE_PROVEN_CONTRIBUTORS": "false"}
    (workdir / "data").mkdir()
    env.update(extra_env or {})
    if jwt_public:
        env["HOKUSAI_JWT_PUBLIC_KEY"] = jwt_public
    if hokusai_db:
        env["HOKUSAI_DATABASE_URI"] = hokusai_db
    database_uri = hokusai_db or backend_uri
    if admin_key is None:
        # The first admin key comes from the CLI, as an operator would make it. In a
        # process of its own: run in this one (2-3 s faster per server), its cached
        # engine kept idle connections to every server's database, and the suite ran
        # the shared PostgreSQL out of connections (100).
        created = subprocess.run(
            [str(BIN / "hokusai"), "keys", "bootstrap", "--json", "--database-uri", database_uri],
            check=True, capture_output=True, text=True)
        admin_key = json.loads(created.stdout)["key"]
    mlflow_server = MlflowServer(workdir, backend_uri, server=server, env=env,
                                 artifacts=artifacts).start()
    return RunningServer(mlflow_server, database_uri, admin_key, name, workdir / "data")
