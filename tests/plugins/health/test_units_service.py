"""In-process tests of the health-result cache (injected clock) and of the
shared SQLite limit storage across processes."""

import multiprocessing
import threading

import limits
from limits.strategies import MovingWindowRateLimiter

from mlflow_hokusai.plugins.health.checks import Cached
from mlflow_hokusai.plugins.ratelimit.filestorage import SqliteFileStorage
from tests.support.clock import FakeClock as Clock


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


def test_file_storage_window_follows_the_clock_and_every_writer(tmp_path, monkeypatch):
    """The moving window against a plain model of it, on a fake clock, with the
    periodic sweep in between; events written by another writer of the file (an
    older server sharing it) or before the key's first check are counted; a
    key's expired events are deleted by its checks, so the file stays small."""
    from mlflow_hokusai.plugins.ratelimit import filestorage

    now = [1000.0]
    monkeypatch.setattr(filestorage.time, "time", lambda: now[0])
    monkeypatch.setattr(filestorage, "_SWEEP_EVERY", 7)
    storage = SqliteFileStorage(f"hokusai+sqlite://{tmp_path}/limits.db")
    # Written straight into the file, as a writer that knows no window sizes.
    storage._connect().executemany("INSERT INTO events VALUES (?, ?, ?)",
                                   [("a", 995.0, 1005.0), ("a", 999.0, 1009.0)])
    model = {"a": [995.0, 999.0], "b": []}
    steps = [(key, amount, 0.3 + (i * 7 % 11) / 4) for i, (key, amount) in
             enumerate([("a", 1), ("b", 1), ("a", 2), ("b", 1), ("a", 1)] * 60)]
    for key, amount, pause in steps:
        now[0] += pause
        window = [at for at in model[key] if at >= now[0] - 10]
        allowed = len(window) + amount <= 4
        assert storage.acquire_entry(key, 4, 10, amount) is allowed
        model[key] = window + [now[0]] * amount if allowed else window
        assert storage.get_moving_window(key, 4, 10) == (min(model[key], default=now[0]),
                                                         len(model[key]))
    storage._connect().execute("INSERT INTO events VALUES ('b', ?, ?)", (now[0], now[0] + 10))
    assert storage.get_moving_window("b", 4, 10)[1] == len(model["b"]) + 1
    (stored,) = storage._read("SELECT count(*) FROM events")
    assert stored <= 4 + 4 + 1  # each key's window at most, not the whole history
