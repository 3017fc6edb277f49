"""In-process tests of the health-result cache (injected clock) and of the
shared SQLite limit storage across processes."""

import multiprocessing
import threading

import limits
from limits.strategies import MovingWindowRateLimiter

from mlflow_hokusai.plugins.health.checks import Cached
from mlflow_hokusai.plugins.ratelimit.filestorage import SqliteFileStorage
from tests.test_units import FakeClock as Clock


def test_health_results_are_computed_once_per_interval():
    clock, runs = Clock(), []
    cached = Cached(lambda: runs.append(clock.now) or {"n": len(runs)}, 1.0, clock)
    assert all(cached.get() == {"n": 1} for _ in range(500))
    clock.now += 0.99
    assert cached.get() == {"n": 1}
    clock.now += 0.01
    assert cached.get() == {"n": 2} and cached.get() == {"n": 2}
    assert runs == [1000.0, 1001.0]


def test_concurrent_callers_share_one_run_and_never_queue_on_a_refresh():
    clock, runs, release = Clock(), [], threading.Event()

    def run():
        runs.append(1)
        release.wait(10)
        return {"n": len(runs)}

    cached = Cached(run, 1.0, clock)
    results = []
    threads = [threading.Thread(target=lambda: results.append(cached.get())) for _ in range(8)]
    for thread in threads:
        thread.start()
    release.set()
    for thread in threads:
        thread.join()
    assert results == [{"n": 1}] * 8 and len(runs) == 1  # the first callers waited for one run

    release.clear()
    clock.now += 5
    refresher = threading.Thread(target=cached.get)
    refresher.start()
    while len(runs) < 2:
        pass
    # A refresh is under way (and hung): others get the previous results at once.
    assert [cached.get() for _ in range(3)] == [{"n": 1}] * 3
    release.set()
    refresher.join()
    assert cached.get() == {"n": 2} and len(runs) == 2


def _hammer(uri, count, results):
    limiter = MovingWindowRateLimiter(SqliteFileStorage(uri))
    item = limits.parse("25/minute")
    results.put(sum(limiter.hit(item, "shared-key") for _ in range(count)))


def test_file_storage_is_exact_across_processes(tmp_path):
    uri = f"hokusai+sqlite://{tmp_path}/limits.db"
    results = multiprocessing.get_context("spawn").Queue()
    processes = [multiprocessing.get_context("spawn").Process(target=_hammer,
                                                              args=(uri, 20, results))
                 for _ in range(3)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
    assert sum(results.get(timeout=5) for _ in processes) == 25
    storage = SqliteFileStorage(uri)
    stats = MovingWindowRateLimiter(storage).get_window_stats(limits.parse("25/minute"),
                                                              "shared-key")
    assert stats.remaining == 0
    assert storage.incr("c", 60) == 1 and storage.incr("c", 60, 2) == 3 and storage.get("c") == 3
    storage.clear("c")
    assert storage.get("c") == 0 and storage.check()
