"""Cost of rate limiting: hokusai with limits off, in the shared file (default), in
per-process memory, and in Redis.

    .venv/bin/python -m benchmarks.bench_ratelimit [--workers 2] [--seconds 10] [--rounds 3]

Same request mix as bench_auth, same key (with a limit far above the load, so
every request is counted but none refused), each server on its own fresh
PostgreSQL database, Redis on 127.0.0.1:6379 under a throwaway key prefix.
Target: Redis-backed limiting costs <= 5 % throughput; the shared file (the
default, exact across one server's workers) should cost about as much.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import uuid
from pathlib import Path

import redis

from benchmarks.common import measure_all, parse_args, print_table
from tests.support.databases import postgres_databases
from tests.support.servers import BIN, MlflowServer

MODES = {
    "limits off": {"HOKUSAI_RATE_LIMITS_ENABLED": "false"},
    "limits in the shared file": {},
    "limits in memory": {"HOKUSAI_RATE_LIMIT_STORAGE_URI": "memory://"},
    "limits in Redis": {"HOKUSAI_RATE_LIMIT_STORAGE_URI": "redis://127.0.0.1:6379/0"},
}


def main():
    args = parse_args(__doc__)
    prefix = f"hokusai-bench-{uuid.uuid4().hex[:8]}"

    with postgres_databases("hokusai_bench") as make_db, tempfile.TemporaryDirectory() as tmp:
        servers: dict[str, tuple[MlflowServer, dict]] = {}
        try:
            for name, env in MODES.items():
                database = make_db()
                created = subprocess.run(
                    [str(BIN / "hokusai"), "keys", "create", "--name", "bench", "--rate-limit",
                     "10000000/minute", "--json", "--database-uri", database],
                    check=True, capture_output=True, text=True)
                headers = {"Authorization": f"Bearer {json.loads(created.stdout)['key']}"}
                server = MlflowServer(Path(tmp) / name.replace(" ", "-"), database,
                                      workers=args.workers,
                                      env={**env, "HOKUSAI_RATE_LIMIT_KEY_PREFIX": prefix})
                servers[name] = (server.start(), headers)
            figures, errors = measure_all(servers, args)
        finally:
            for server, _ in servers.values():
                server.stop()
            client = redis.Redis()
            for key in client.scan_iter(f"{prefix}*"):
                client.delete(key)
    print_table(f"Rate limiting on the request mix, uvicorn {args.workers} workers, PostgreSQL, "
                f"{args.concurrency} clients, median of {args.rounds} x {args.seconds:.0f} s",
                figures, "limits off", errors)


if __name__ == "__main__":
    main()
