"""Throughput of the authenticated request mix: stock MLflow vs hokusai vs basic-auth.

    .venv/bin/python -m benchmarks.bench_auth [--workers 2] [--seconds 10] [--rounds 3]

Each server gets its own fresh PostgreSQL database and the same number of
uvicorn workers. The mix is log-batch (10 metrics), get-run and search-runs,
sent by concurrent clients; stock MLflow gets no credentials (it has no auth),
hokusai an API key (also with its audit trail off, to show the audit's cost),
basic-auth a user and password (default config, and with its 60 s credential
cache). Target: hokusai >= 0.95 x stock.
"""

from __future__ import annotations

import base64
import json
import subprocess
import tempfile
from pathlib import Path

from benchmarks.common import measure_all, parse_args, print_table
from tests.support.databases import postgres_databases
from tests.support.servers import BIN, MlflowServer

ADMIN_PASSWORD = "bench-Password-1234"


def basic_auth_env(workdir: Path, database_uri: str, cache_ttl: int) -> dict[str, str]:
    ini = workdir / "basic_auth.ini"
    ini.write_text("[mlflow]\ndefault_permission = READ\n"
                   f"database_uri = {database_uri}\nadmin_username = admin\n"
                   f"admin_password = {ADMIN_PASSWORD}\n"
                   "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
                   f"auth_cache_ttl_seconds = {cache_ttl}\n")
    return {"MLFLOW_AUTH_CONFIG_PATH": str(ini), "MLFLOW_FLASK_SERVER_SECRET_KEY": "bench-secret"}


def start_servers(make_db, root: Path, workers: int, servers: dict) -> None:
    """Fill ``servers`` as they start, so the caller can stop them if one fails."""
    stock = MlflowServer(root / "stock", make_db(), app_name=None, workers=workers)
    servers["stock mlflow"] = (stock.start(), {})

    # The second hokusai differs only in its audit trail: the row shows what
    # recording each write durably (spool fdatasync before the answer) costs.
    for label, env in (("hokusai", {}),
                       ("hokusai audit off", {"HOKUSAI_AUDIT_ENABLED": "false"})):
        hokusai_db = make_db()
        # Rate limits stay on (the shared file, as by default), far above the load.
        created = subprocess.run([str(BIN / "hokusai"), "keys", "create", "--name", "bench",
                                  "--rate-limit", "10000000/minute", "--json",
                                  "--database-uri", hokusai_db],
                                 check=True, capture_output=True, text=True)
        key = json.loads(created.stdout)["key"]
        hokusai = MlflowServer(root / label.replace(" ", "_"), hokusai_db, workers=workers,
                               env=env)
        servers[label] = (hokusai.start(), {"Authorization": f"Bearer {key}"})

    basic = "Basic " + base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()
    for label, ttl in (("basic-auth", 0), ("basic-auth cache=60s", 60)):
        workdir = root / label.replace(" ", "_").replace("=", "")
        workdir.mkdir()
        server = MlflowServer(workdir, make_db(), app_name="basic-auth", workers=workers,
                              env=basic_auth_env(workdir, make_db(), ttl))
        servers[label] = (server.start(), {"Authorization": basic})


def main():
    args = parse_args(__doc__)

    with postgres_databases() as make_db, tempfile.TemporaryDirectory() as tmp:
        servers: dict[str, tuple[MlflowServer, dict]] = {}
        try:
            start_servers(make_db, Path(tmp), args.workers, servers)
            figures, errors = measure_all(servers, args)
        finally:
            for server, _ in servers.values():
                server.stop()
    print_table(f"Authenticated request mix (log-batch, get-run, search-runs), uvicorn "
                f"{args.workers} workers, PostgreSQL, {args.concurrency} clients, median of "
                f"{args.rounds} x {args.seconds:.0f} s", figures, "stock mlflow", errors)


if __name__ == "__main__":
    main()
