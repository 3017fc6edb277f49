"""Shared fixtures: a PostgreSQL database per run, and real servers shared per session.

Servers are session-scoped and started on first use: tests never change a
server's settings, and each test works with its own keys and resource names.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from mlflow_hokusai.db.engine import get_engine, to_sqlalchemy_url
from mlflow_hokusai.plugins.auth.keystore import KeyStore
from tests import jwt_keys
from tests.databases import postgres_databases
from tests.pgcluster import PostgresCluster
from tests.servers import BIN, MlflowServer

JWT_SECRET = "test-secret-" + uuid.uuid4().hex


@pytest.fixture(scope="session")
def make_postgres_database():
    """Create throwaway databases on the shared PostgreSQL; all dropped at the end."""
    with postgres_databases() as make:
        yield make


@pytest.fixture(scope="session")
def redis_prefix():
    """A key prefix of this run's own on the shared Redis; its keys are deleted after."""
    prefix = f"hokusai-test-{uuid.uuid4().hex[:10]}"
    yield prefix
    client = redis.Redis(host="127.0.0.1", port=6379)
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
    client.close()


@pytest.fixture(scope="module")
def throwaway_postgres():
    """A PostgreSQL cluster of the module's own, for tests that kill it."""
    cluster = PostgresCluster().start()
    yield cluster
    cluster.destroy()


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


def _start(tmp_path_factory, name, backend_uri, *, server, hokusai_db=None, jwt_public=None,
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
           "HOKUSAI_AUDIT_SPOOL_DIR": str(workdir / "audit-spool")}
    (workdir / "data").mkdir()
    env.update(extra_env or {})
    if jwt_public:
        env["HOKUSAI_JWT_PUBLIC_KEY"] = jwt_public
    if hokusai_db:
        env["HOKUSAI_DATABASE_URI"] = hokusai_db
    database_uri = hokusai_db or backend_uri
    if admin_key is None:
        # The first admin key comes from the CLI, as an operator would make it.
        created = subprocess.run(
            [str(BIN / "hokusai"), "keys", "bootstrap", "--json", "--database-uri", database_uri],
            check=True, capture_output=True, text=True)
        admin_key = json.loads(created.stdout)["key"]
    mlflow_server = MlflowServer(workdir, backend_uri, server=server, env=env,
                                 artifacts=artifacts).start()
    return RunningServer(mlflow_server, database_uri, admin_key, name, workdir / "data")


@pytest.fixture(scope="session")
def uvicorn_sqlite(tmp_path_factory):
    # No HOKUSAI_DATABASE_URI: the keys live in the backend store's database.
    db_file = tmp_path_factory.mktemp("sqlite") / "mlflow.db"
    running = _start(tmp_path_factory, "uvicorn-sqlite", f"sqlite:///{db_file}",
                     server="uvicorn", jwt_public=jwt_keys.RSA_PUBLIC)
    yield running
    running.server.stop()


@pytest.fixture(scope="session")
def postgres_backend(make_postgres_database):
    return make_postgres_database()


@pytest.fixture(scope="session")
def gunicorn_postgres(tmp_path_factory, postgres_backend):
    running = _start(tmp_path_factory, "gunicorn-postgres", postgres_backend, server="gunicorn",
                     hokusai_db=postgres_backend, jwt_public=jwt_keys.EC_PUBLIC)
    yield running
    running.server.stop()


@pytest.fixture(scope="session")
def uvicorn_postgres(tmp_path_factory, postgres_backend, gunicorn_postgres):
    # A second server on the same database, as a scaled-out deployment runs.
    running = _start(tmp_path_factory, "uvicorn-postgres", postgres_backend, server="uvicorn",
                     hokusai_db=postgres_backend, jwt_public=jwt_keys.RSA_PUBLIC,
                     admin_key=gunicorn_postgres.admin_key)
    yield running
    running.server.stop()


@pytest.fixture(scope="session")
def hokusai_scheme(tmp_path_factory, make_postgres_database):
    """MLflow on the hokusai+postgresql:// store plugin, schema made by
    `hokusai db upgrade`, keys in the same database (no HOKUSAI_DATABASE_URI)."""
    backend = "hokusai+" + make_postgres_database()
    subprocess.run([str(BIN / "hokusai"), "db", "upgrade", "--database-uri", backend],
                   check=True, capture_output=True)
    running = _start(tmp_path_factory, "hokusai-scheme", backend, server="uvicorn")
    yield running
    running.server.stop()


SERVERS = ["uvicorn_sqlite", "gunicorn_postgres", "uvicorn_postgres", "hokusai_scheme"]
SERVER_KINDS = ["uvicorn_sqlite", "gunicorn_postgres"]


@pytest.fixture(params=SERVERS)
def any_server(request) -> RunningServer:
    return request.getfixturevalue(request.param)


@pytest.fixture(params=SERVER_KINDS)
def each_server_kind(request) -> RunningServer:
    """One server of each kind (uvicorn/ASGI gate, gunicorn/WSGI gate)."""
    return request.getfixturevalue(request.param)


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def _artifact_store(kind, tmp_path_factory):
    from tests.artifact_stores import start_store

    def start_server(*, extra_env, **kwargs):
        db_file = tmp_path_factory.mktemp(f"artifacts-{kind}") / "mlflow.db"
        # These servers test the repository behind the artifact proxy, at paths
        # outside any experiment, which only the default permission governs
        # (per-resource permissions of artifacts: test_permissions.py).
        env = {"HOKUSAI_DEFAULT_PERMISSION": "MANAGE", **extra_env}
        return _start(tmp_path_factory, f"artifacts-{kind}", f"sqlite:///{db_file}",
                      server="uvicorn", extra_env=env, **kwargs)

    yield from start_store(kind, tmp_path_factory, start_server)


@pytest.fixture(scope="session")
def hokusai_file_store(tmp_path_factory):
    """A server proxying artifacts to a hokusai+file:// store."""
    yield from _artifact_store("file", tmp_path_factory)


@pytest.fixture(scope="session")
def hokusai_s3_store(tmp_path_factory):
    """A server proxying artifacts to a hokusai+s3:// store on a local moto server."""
    yield from _artifact_store("s3", tmp_path_factory)


@pytest.fixture(params=["hokusai_file_store", "hokusai_s3_store"])
def artifact_store(request):
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="module")
def chromium():
    """One headless Debian chromium per browser test module (tests/browser.py).
    Not per session: Playwright's sync API keeps an event loop running in the
    main thread while it is open, and later tests that start their own loop
    (anyio.run) would find it there."""
    from tests.browser import chromium as launch

    with launch() as browser:
        yield browser
