"""The cost of per-resource permissions: the authenticated request mix against
stock MLflow and hokusai with its checks, in one run.

    .venv/bin/python -m benchmarks.bench_permissions [--workers 2] [--seconds 10] [--rounds 3]

The mix (log-batch of 10 metrics, get-run, search-runs) from concurrent
clients, each side on a fresh PostgreSQL database with the same uvicorn
workers: stock MLflow (no auth); hokusai as the experiment's owner; hokusai as
another principal writing through an EDIT grant (owner and grant lookups); and
a private hokusai (HOKUSAI_DEFAULT_PERMISSION=NO_PERMISSIONS: every search
filtered in SQL). Prints requests/s and server CPU milliseconds per request
(all workers), both against stock. Target: >= 0.90 x stock throughput.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import requests

from benchmarks.common import measure_mixes, parse_args, prepare_run, print_table, request_mix
from tests.support.databases import postgres_databases
from tests.support.servers import BIN, MlflowServer


def _key(database_uri: str, owner: str) -> dict:
    # Rate limits stay on (the shared file, as by default), far above the load.
    created = subprocess.run([str(BIN / "hokusai"), "keys", "create", "--name", owner,
                              "--owner", owner, "--rate-limit", "10000000/minute", "--json",
                              "--database-uri", database_uri],
                             check=True, capture_output=True, text=True)
    return {"Authorization": f"Bearer {json.loads(created.stdout)['key']}"}


def _hokusai(make_db, root: Path, name: str, workers: int, env=None):
    database = make_db()
    owner, editor = _key(database, "owner"), _key(database, "editor")
    server = MlflowServer(root / name, database, workers=workers, env=env).start()
    return server, owner, editor


def start_mixes(make_db, root: Path, workers: int, servers: list) -> dict:
    """The mixes by name; ``servers`` collects what started, for the caller to stop."""
    stock = MlflowServer(root / "stock", make_db(), app_name=None, workers=workers).start()
    servers.append(stock)
    mixes = {"stock mlflow": (stock, request_mix(stock, {}, *prepare_run(stock, {})))}

    shared, owner, editor = _hokusai(make_db, root, "hokusai", workers)
    servers.append(shared)
    mixes["hokusai, owner"] = (shared, request_mix(shared, owner,
                                                   *prepare_run(shared, owner)))
    experiment, run = prepare_run(shared, owner)
    requests.post(shared.url + "/api/3.0/mlflow/users/permissions/grant", headers=owner,
                  timeout=30, json={"username": "editor", "resource_type": "experiment",
                                    "resource_id": experiment, "permission": "EDIT"}
                  ).raise_for_status()
    mixes["hokusai, EDIT grant"] = (shared, request_mix(shared, editor, experiment, run))

    private, owner, _ = _hokusai(make_db, root, "private", workers,
                                 env={"HOKUSAI_DEFAULT_PERMISSION": "NO_PERMISSIONS"})
    servers.append(private)
    mixes["hokusai private, owner"] = (private, request_mix(private, owner,
                                                           *prepare_run(private, owner)))
    return mixes


def main():
    args = parse_args(__doc__)
    cpu: dict[str, float] = {}
    with postgres_databases() as make_db, tempfile.TemporaryDirectory() as tmp:
        servers: list[MlflowServer] = []
        try:
            mixes = start_mixes(make_db, Path(tmp), args.workers, servers)
            figures, errors = measure_mixes(mixes, args, cpu)
        finally:
            for server in servers:
                server.stop()
    title = (f"Request mix with per-resource permissions, uvicorn {args.workers} workers, "
             f"PostgreSQL, {args.concurrency} clients, median of {args.rounds} x "
             f"{args.seconds:.0f} s")
    print_table(title, figures, "stock mlflow", errors)
    print_table("Server CPU per request (all workers; lower is better)", cpu, "stock mlflow",
                unit="ms/req")


if __name__ == "__main__":
    main()
