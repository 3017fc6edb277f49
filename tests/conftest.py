"""Shared fixtures: a PostgreSQL database per run, and real servers shared per session.

Servers are session-scoped and started on first use: tests never change a
server's settings, and each test works with its own keys and resource names.
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest
import redis

from tests.support import jwt_keys
from tests.support.callers import Caller
from tests.support.databases import postgres_databases
from tests.support.hokusai_servers import SERVER_KINDS, SERVERS, RunningServer, start_server
from tests.support.pgcluster import PostgresCluster
from tests.support.servers import BIN


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


@pytest.fixture(scope="session")
def uvicorn_sqlite(tmp_path_factory):
    # No HOKUSAI_DATABASE_URI: the keys live in the backend store's database.
    db_file = tmp_path_factory.mktemp("sqlite") / "mlflow.db"
    running = start_server(tmp_path_factory, "uvicorn-sqlite", f"sqlite:///{db_file}",
                           server="uvicorn", jwt_public=jwt_keys.RSA_PUBLIC)
    yield running
    running.server.stop()


@pytest.fixture(scope="session")
def postgres_backend(make_postgres_database):
    return make_postgres_database()


@pytest.fixture(scope="session")
def gunicorn_postgres(tmp_path_factory, postgres_backend):
    running = start_server(tmp_path_factory, "gunicorn-postgres", postgres_backend,
                           server="gunicorn", hokusai_db=postgres_backend,
                           jwt_public=jwt_keys.EC_PUBLIC)
    yield running
    running.server.stop()


@pytest.fixture(scope="session")
def uvicorn_postgres(tmp_path_factory, postgres_backend, gunicorn_postgres):
    # A second server on the same database, as a scaled-out deployment runs.
    running = start_server(tmp_path_factory, "uvicorn-postgres", postgres_backend, server="uvicorn",
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
    running = start_server(tmp_path_factory, "hokusai-scheme", backend, server="uvicorn")
    yield running
    running.server.stop()


@pytest.fixture(params=SERVERS)
def any_server(request) -> RunningServer:
    return request.getfixturevalue(request.param)


@pytest.fixture(params=SERVER_KINDS)
def each_server_kind(request) -> RunningServer:
    """One server of each kind (uvicorn/ASGI gate, gunicorn/WSGI gate)."""
    return request.getfixturevalue(request.param)


@pytest.fixture
def team(each_server_kind):
    """An owner and another principal, each with a read,write key, and an admin."""
    tag = uuid.uuid4().hex[:8]
    owner = Caller(each_server_kind, each_server_kind.create_key("read,write",
                                                                 owner=f"alice-{tag}"))
    other = Caller(each_server_kind, each_server_kind.create_key("read,write", owner=f"bob-{tag}"))
    admin = Caller(each_server_kind, each_server_kind.admin_key)
    return each_server_kind, owner, other, admin, tag


@pytest.fixture
def no_telemetry(monkeypatch):
    """MLflow's telemetry thread, giving up (no network here), unsets an env var
    while the client's request code iterates os.environ: a KeyError, now and
    then, in a test that has nothing to do with it. Stopped before it starts
    (modules of MLflow client calls use it: pytestmark usefixtures)."""
    from mlflow.telemetry.client import set_telemetry_client

    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    set_telemetry_client()


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def _artifact_store(kind, tmp_path_factory):
    from tests.support.artifact_stores import start_store

    def start_for_store(*, extra_env, **kwargs):
        db_file = tmp_path_factory.mktemp(f"artifacts-{kind}") / "mlflow.db"
        # These servers test the repository behind the artifact proxy, at paths
        # outside any experiment, which only the default permission governs
        # (per-resource permissions of artifacts: test_permissions.py).
        env = {"HOKUSAI_DEFAULT_PERMISSION": "MANAGE", **extra_env}
        return start_server(tmp_path_factory, f"artifacts-{kind}", f"sqlite:///{db_file}",
                            server="uvicorn", extra_env=env, **kwargs)

    yield from start_store(kind, tmp_path_factory, start_for_store)


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
    """One headless Debian chromium per browser test module (tests/support/browser.py).
    Not per session: Playwright's sync API keeps an event loop running in the
    main thread while it is open, and later tests that start their own loop
    (anyio.run) would find it there."""
    from tests.support.browser import chromium as launch

    with launch() as browser:
        yield browser


@pytest.fixture
def mlflow_store_builders_restored():
    """The store plugin registers its builders in MLflow's process-wide store
    registries: later tests' MLflow clients in this process must get MLflow's
    own stores again."""
    from mlflow_hokusai import mlflow_compat

    restore = mlflow_compat.snapshot_store_builders()
    yield
    restore()
