"""Cost of rate limiting: hokusai with limits off, in the shared file (default), in
per-process memory, and in Redis.

    .venv/bin/python -m benchmarks.bench_ratelimit [--workers 2] [--seconds 10] [--rounds 3]

Same request mix as bench_auth, same key (with a limit far above the load, so
every request is counted but none refused), each server on its own fresh
PostgreSQL database, Redis on 127.0.0.1:6379 under a throwaway key prefix.
Target: Redis-backed limiting costs <= 5 % throughput; the shared file (the
default, exact across one server's workers) should cost about as much. Also
printed: the servers' CPU per request, and, in this process, the CPU of the
limiter's storage calls per request against each storage (throughput on a
2-core machine that also runs the clients moves by a tenth between runs, more
than the cost being measured).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import limits
import redis

from benchmarks.common import measure_all, parse_args, print_table
from mlflow_hokusai.plugins.ratelimit.limiter import Limiter
from mlflow_hokusai.settings import Settings
from tests.support.databases import postgres_databases
from tests.support.servers import BIN, MlflowServer

MODES = {
    "limits off": {"HOKUSAI_RATE_LIMITS_ENABLED": "false"},
    "limits in the shared file": {},
    "limits in memory": {"HOKUSAI_RATE_LIMIT_STORAGE_URI": "memory://"},
    "limits in Redis": {"HOKUSAI_RATE_LIMIT_STORAGE_URI": "redis://127.0.0.1:6379/0"},
}

CALLS = 3000


def storage_cpu_us(env: dict[str, str]) -> float:
    """CPU microseconds of one authenticated request's storage calls, as
    ``Limiter.check_lockout`` and ``check_key`` make them (a route without a
    group): test the address's lockout, hit the key's window, read its stats."""
    limiter = Limiter(Settings.from_env(env))
    key = limits.parse("10000000/minute")
    identity = uuid.uuid4().hex

    def request():
        limiter.strategy.test(limiter.lockout, "lockout", "127.0.0.1")
        limiter.strategy.hit(key, "key", identity)
        limiter.strategy.get_window_stats(key, "key", identity)

    for _ in range(CALLS // 10):  # connections, prepared scripts, SQLite's cache
        request()
    started = time.process_time()
    for _ in range(CALLS):
        request()
    return (time.process_time() - started) * 1e6 / CALLS


def main():
    args = parse_args(__doc__)
    prefix = f"hokusai-bench-{uuid.uuid4().hex[:8]}"

    with postgres_databases("hokusai_bench") as make_db, tempfile.TemporaryDirectory() as tmp:
        servers: dict[str, tuple[MlflowServer, dict]] = {}
        cpu: dict[str, float] = {}
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
            figures, errors = measure_all(servers, args, cpu)
            calls = {name: storage_cpu_us({
                "HOKUSAI_RATE_LIMIT_STORAGE_URI": f"hokusai+sqlite://{tmp}/calls.db",
                **env, "HOKUSAI_RATE_LIMIT_KEY_PREFIX": prefix})
                for name, env in MODES.items() if name != "limits off"}
        finally:
            for server, _ in servers.values():
                server.stop()
            client = redis.Redis()
            for key in client.scan_iter(f"{prefix}*"):
                client.delete(key)
    print_table(f"Rate limiting on the request mix, uvicorn {args.workers} workers, PostgreSQL, "
                f"{args.concurrency} clients, median of {args.rounds} x {args.seconds:.0f} s",
                figures, "limits off", errors)
    # Throughput on a 2-core machine that also runs the clients moves by a tenth
    # from run to run; the servers' CPU per request is the steadier figure.
    print_table("Server CPU per request (all workers; Redis's own CPU not included)", cpu,
                "limits off", unit="ms/req")
    print(f"\nThe limiter's storage calls per request, in this process ({CALLS} requests; "
          "share of the server CPU per request with limits off)")
    for name, micros in calls.items():
        print(f"  {name.ljust(26)} {micros:9.1f} us/req   share: "
              f"{micros / 1000 / cpu['limits off']:.1%}")


if __name__ == "__main__":
    main()
