"""Shared benchmark plumbing: a bounded load loop, interleaved rounds, the table.

Benchmarks are not tests: they print figures and ratios and never fail on speed.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import statistics
import threading
import time

import requests


def parse_args(doc: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    return parser.parse_args()


def drive(requests_for_thread, *, seconds: float, concurrency: int) -> tuple[float, int]:
    """Run each thread's request generator for ``seconds``; (requests/s, errors).

    ``requests_for_thread(session)`` returns a callable making one request and
    returning its status code. The loop is bounded in time and stops by itself.
    """
    stop = threading.Event()
    counts, errors = [0] * concurrency, [0] * concurrency

    def worker(index):
        session = requests.Session()
        one_request = requests_for_thread(session)
        while not stop.is_set():
            if one_request() >= 400:
                errors[index] += 1
            counts[index] += 1

    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        futures = [pool.submit(worker, i) for i in range(concurrency)]
        started = time.monotonic()
        time.sleep(seconds)
        stop.set()
        for future in futures:
            future.result()
        elapsed = time.monotonic() - started
    return sum(counts) / elapsed, sum(errors)


def interleaved(measure, names: list[str], rounds: int) -> dict[str, float]:
    """Median of ``rounds`` measurements per name, taken in alternation so that
    background noise on a shared machine hits every side alike."""
    results: dict[str, list[float]] = {name: [] for name in names}
    for round_number in range(rounds):
        order = names if round_number % 2 == 0 else list(reversed(names))
        for name in order:
            results[name].append(measure(name))
    return {name: statistics.median(values) for name, values in results.items()}


def server_cpu_seconds(server) -> float:
    """CPU time (user + system) of a server and all its workers so far."""
    import psutil

    root = psutil.Process(server.process.pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:  # a worker restarted in between
            pass
    return total


def measure_mixes(mixes: dict, args, cpu: dict | None = None
                  ) -> tuple[dict[str, float], dict[str, int]]:
    """``name: (server, for_thread)`` request mixes: warm-up, then interleaved
    rounds; (median req/s, errors of the last round) per side. With ``cpu``,
    also fills it with the median server CPU milliseconds per request: on a
    small machine shared with the clients, throughput is noisy, CPU less so."""
    for _, mix in mixes.values():
        drive(mix, seconds=2, concurrency=args.concurrency)
    errors: dict[str, int] = {}
    cpu_rounds: dict[str, list[float]] = {name: [] for name in mixes}

    def measure(name):
        server, mix = mixes[name]
        before = server_cpu_seconds(server) if cpu is not None else 0.0
        rate, errors[name] = drive(mix, seconds=args.seconds, concurrency=args.concurrency)
        if cpu is not None and rate:
            cpu_rounds[name].append(
                (server_cpu_seconds(server) - before) * 1000 / (rate * args.seconds))
        return rate

    figures = interleaved(measure, list(mixes), args.rounds)
    if cpu is not None:
        cpu.update({name: statistics.median(values) for name, values in cpu_rounds.items()
                    if values})
    return figures, errors


def measure_all(servers: dict, args, cpu: dict | None = None
                ) -> tuple[dict[str, float], dict[str, int]]:
    """The request mix against each ``name: (server, headers)``. Errors mean the
    figure is not comparable."""
    mixes = {name: (server, request_mix(server, headers, *prepare_run(server, headers)))
             for name, (server, headers) in servers.items()}
    return measure_mixes(mixes, args, cpu)


def print_table(title: str, figures: dict[str, float], baseline: str, errors=None,
                unit: str = "req/s"):
    print(f"\n{title}")
    width = max(len(name) for name in figures)
    for name, value in figures.items():
        ratio = value / figures[baseline] if figures[baseline] else float("nan")
        print(f"  {name.ljust(width)}  {value:9.1f} {unit}   ratio vs {baseline}: {ratio:.3f}")
    if errors and any(errors.values()):
        print(f"  ERRORS in the last round (figures not comparable): {errors}")


def prepare_run(server, headers: dict) -> tuple[str, str]:
    """An experiment and a run to aim the request mix at."""
    api = server.url + "/api/2.0/mlflow"
    experiment = requests.post(f"{api}/experiments/create",
                               json={"name": f"bench-{time.time_ns()}"},
                               headers=headers, timeout=30).json()["experiment_id"]
    run = requests.post(f"{api}/runs/create", json={"experiment_id": experiment},
                        headers=headers, timeout=30).json()["run"]["info"]["run_id"]
    return experiment, run


def request_mix(server, headers: dict, experiment: str, run: str):
    """Per-thread request makers cycling log-batch (10 metrics), get-run, search-runs."""
    api = server.url + "/api/2.0/mlflow"

    def for_thread(session):
        session.headers.update(headers)
        step = [0]

        def one():
            step[0] += 1
            kind = step[0] % 3
            if kind == 0:
                now = int(time.time() * 1000)
                metrics = [{"key": f"m{i}", "value": i * 0.5, "timestamp": now, "step": step[0]}
                           for i in range(10)]
                response = session.post(f"{api}/runs/log-batch",
                                        json={"run_id": run, "metrics": metrics}, timeout=60)
            elif kind == 1:
                response = session.get(f"{api}/runs/get", params={"run_id": run}, timeout=60)
            else:
                response = session.post(f"{api}/runs/search", timeout=60,
                                        json={"experiment_ids": [experiment], "max_results": 10})
            return response.status_code

        return one

    return for_thread
