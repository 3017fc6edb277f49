"""Replays the attacks of issue 14 against a server it starts and prints, for each,
what an admin experienced at the same time.

    .venv/bin/python -m benchmarks.reliability [--backend postgresql|sqlite] [--workers 2]
                                               [--seconds 5] [--only 2,5]

Not a test: one uvicorn server (``--workers``, PostgreSQL or SQLite, the
defaults of every setting except a 5 s lockout), plus a one-worker gunicorn
server on the same database for the access-log attack. Before the attacks an
admin alone makes audited writes (``runs/set-tag``) and reads (``runs/get``)
for ``--seconds``: the baseline. Then, attack by attack, the admin does the
same while the attack runs, and the line says how many of the admin's
requests were served, how many audit records were written of those expected,
and either "no effect" or what went wrong (the attack's own damage included:
a token taken twice, a worker gone, a 500...).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import random
import socket
import string
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psutil
import requests

from benchmarks.common import drive
from mlflow_hokusai.db.engine import get_engine
from mlflow_hokusai.plugins.auth.keystore import KeyStore
from tests.support.databases import postgres_databases
from tests.support.servers import BIN, MlflowServer

API = "/api/2.0/mlflow"
LEAKS = ("SELECT ", "INSERT ", "psycopg", "sqlite3", "Traceback", "/tmp/", "127.0.0.1:5432")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--only", default="", help="comma-separated attack numbers")
    return parser.parse_args()


class Target:
    """The server under attack, its key store, and request helpers."""

    def __init__(self, server: MlflowServer, database: str, args, workdir: Path):
        self.server, self.url, self.database = server, server.url, database
        self.backend, self.seconds, self.workdir = args.backend, args.seconds, workdir
        self.store = KeyStore(get_engine(database))

    def key(self, scopes="read,write", **kwargs) -> tuple[str, dict]:
        record, plaintext = self.store.create(f"rel-{uuid.uuid4().hex[:6]}", scopes=scopes,
                                              **kwargs)
        return record.id, {"X-API-Key": plaintext}

    def call(self, method, path, headers, **kwargs) -> requests.Response:
        return requests.request(method, self.url + path, headers=headers, timeout=120, **kwargs)

    def run(self, headers) -> str:
        experiment = self.call("POST", f"{API}/experiments/create", headers,
                               json={"name": f"rel-{uuid.uuid4().hex}"}).json()["experiment_id"]
        return self.call("POST", f"{API}/runs/create", headers,
                         json={"experiment_id": experiment}).json()["run"]["info"]["run_id"]

    def workers(self) -> dict[int, float]:
        """Worker pid -> resident MiB."""
        sizes = {}
        for child in psutil.Process(self.server.process.pid).children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                sizes[child.pid] = child.memory_info().rss / 2**20
        return sizes


class Admin:
    """An admin's steady work: an audited write, then a read, over and over."""

    def __init__(self, target: Target):
        self.target = target
        self.key_id, self.headers = target.key("admin")
        self.run_id = None

    def new_run(self) -> None:
        """Each attack's writes go to a run of their own, so that its audit
        records are counted apart from the previous attack's."""
        self.run_id = self.target.run(self.headers)

    def work(self, stop: threading.Event) -> dict:
        seen = {"sent": 0, "served": 0, "writes_audited": 0, "statuses": {}}
        session = requests.Session()
        session.headers.update(self.headers)
        while not stop.is_set():
            write = seen["sent"] % 2 == 0
            try:
                if write:
                    response = session.post(
                        self.target.url + f"{API}/runs/set-tag", timeout=60,
                        json={"run_id": self.run_id, "key": f"k{seen['sent']}", "value": "v"})
                else:
                    response = session.get(self.target.url + f"{API}/runs/get", timeout=60,
                                           params={"run_id": self.run_id})
                status = response.status_code
            except requests.RequestException:
                status = 0
            seen["sent"] += 1
            seen["served"] += status == 200
            seen["statuses"][status] = seen["statuses"].get(status, 0) + 1
            # What the audit trail must hold: every write that reached the gate
            # with its credential accepted (401/429 are counted by metrics instead,
            # a breaker's 503 comes before the credential is read).
            seen["writes_audited"] += write and status not in (0, 401, 429, 503)
        return seen

    def audit_count(self, expected: int) -> int:
        """Records of this admin's writes to the current run, once the recorders
        have caught up (they retry a refused batch for several seconds)."""
        count, deadline = -1, time.monotonic() + 20
        while time.monotonic() < deadline:
            records, token = [], None
            while True:
                params = {"key_id": self.key_id, "run_id": self.run_id, "max_results": 1000}
                if token:
                    params["page_token"] = token
                page = self.target.call("GET", "/api/audit", self.headers, params=params).json()
                records += page.get("records", [])
                token = page.get("next_page_token")
                if not token:
                    break
            count = sum("set-tag" in record.get("action", "") for record in records)
            if count >= expected:
                break
            time.sleep(1)
        return count


def during(admin: Admin, attack, seconds: float) -> tuple[dict, list[str], int]:
    """Run ``attack(stop)`` while the admin works: ``stop`` is set after
    ``seconds``, and the admin goes on until the attack has finished."""
    stop, admin_done = threading.Event(), threading.Event()
    admin.new_run()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        work = pool.submit(admin.work, admin_done)
        problems = pool.submit(attack, stop)
        time.sleep(seconds)
        stop.set()
        try:
            problems = problems.result(timeout=300)
        except Exception as exc:  # noqa: BLE001 - the line says so; the other attacks still run
            problems = [f"the attack itself failed: {type(exc).__name__}: {exc}"[:200]]
        admin_done.set()
        seen = work.result()
    return seen, problems, admin.audit_count(seen["writes_audited"])


def until(stop, action, pause=0.0, threads=1):
    """Repeat ``action()`` on ``threads`` threads until the admin's time is up."""
    def loop():
        while not stop.is_set():
            with contextlib.suppress(requests.RequestException, OSError):
                action()
            time.sleep(pause)

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda _: loop(), range(threads)))
    return []


# -- the attacks, numbered as in the issue; each returns what it broke itself


def attack_1_audit_poison(t: Target, stop):
    _, headers = t.key()
    run_id = t.run(headers)

    def poison():
        t.call("POST", f"{API}/runs/set-tag", headers,
               json={"run_id": "\ud800", "key": "k", "value": "v"})
        t.call("POST", f"{API}/runs/set-tag?note=%00", headers,
               json={"run_id": run_id, "key": "k", "value": "v"})

    return until(stop, poison, pause=0.5)


def attack_2_breaker(t: Target, stop):
    _, headers = t.key("read")
    if t.backend == "sqlite":
        query = " AND ".join(f"metrics.m{i} > 0" for i in range(70))  # more than 64 joins
    else:  # more than 65,535 bound parameters
        query = "attributes.run_id IN (" + ",".join(f"'{i:032x}'" for i in range(70000)) + ")"
    until(stop, lambda: t.call("POST", f"{API}/runs/search", headers,
                               json={"experiment_ids": ["0"], "filter": query}), threads=20)
    state = t.call("GET", "/health/status", headers).json()["circuit_breaker"]["state"]
    return [] if state == "closed" else [f"circuit breaker {state}"]


def _send_large(t: Target, path: str, headers: dict, size: int) -> None:
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"X-API-Key: {headers['X-API-Key']}\r\nContent-Length: {size}\r\n\r\n").encode()
    chunk = b"[" * 2**20
    with contextlib.suppress(OSError), socket.create_connection(
            ("127.0.0.1", t.server.port), timeout=60) as sock:
        sock.sendall(head)
        for _ in range(size // len(chunk)):
            sock.sendall(chunk)
        sock.recv(1024)


def attack_3_large_bodies(t: Target, stop):
    _, headers = t.key()
    before = t.workers()
    peak = dict(before)
    sampling = threading.Event()

    def sample():
        while not sampling.is_set():
            for pid, mib in t.workers().items():
                peak[pid] = max(peak.get(pid, 0), mib)
            time.sleep(0.2)

    sampler = threading.Thread(target=sample)
    sampler.start()
    paths = ("/models/register", f"{API}/runs/search")
    until(stop, lambda: _send_large(t, random.choice(paths), headers, 200 * 2**20), threads=3)
    sampling.set()
    sampler.join()
    problems = []
    if set(t.workers()) != set(before):
        problems.append("a worker died and was replaced")
    grown = max((peak[pid] - before[pid] for pid in before if pid in peak), default=0)
    if grown > 300:
        problems.append(f"a worker grew by {grown:.0f} MiB")
    return problems


def _metrics_text(t: Target) -> str:
    return requests.get(t.url + "/metrics", timeout=60,
                        headers={"X-Forwarded-For": f"10.9.{random.randint(0, 255)}.1"}).text


def attack_4_metric_labels(t: Target, stop):
    size = len(_metrics_text(t))
    methods = []

    def for_thread(session):
        def weird():
            methods.append("".join(random.choices(string.ascii_uppercase, k=12)))
            return session.request(methods[-1], t.url + f"{API}/runs/get", timeout=30).status_code
        return weird

    drive(for_thread, seconds=t.seconds, concurrency=4)
    text = _metrics_text(t)
    problems = [f"{sum(m in text for m in methods)} random methods became labels"] \
        if any(m in text for m in methods) else []
    if len(text) > 2 * size + 20000:
        problems.append(f"/metrics grew from {size} to {len(text)} bytes")
    return problems


def attack_5_health_flood(t: Target, stop):
    drive(lambda session: lambda: session.get(t.url + "/health", timeout=30).status_code,
          seconds=t.seconds, concurrency=8)
    return []


def attack_6_artifact_location(t: Target, stop):
    _, headers = t.key()
    problems = []
    for location in (f"/tmp/hokusai-elsewhere-{uuid.uuid4().hex}",
                     f"file:///tmp/hokusai-elsewhere-{uuid.uuid4().hex}"):
        response = t.call("POST", f"{API}/experiments/create", headers,
                          json={"name": f"rel-{uuid.uuid4().hex}", "artifact_location": location})
        if response.status_code == 200:
            problems.append(f"experiment created at {location}")
    return problems


_runs: dict[str, str] = {}  # key -> a run of its own, the source of its versions


def _source(t: Target, headers) -> tuple[str, str]:
    run_id = _runs.get(headers["X-API-Key"]) or _runs.setdefault(headers["X-API-Key"],
                                                               t.run(headers))
    return run_id, f"runs:/{run_id}/model"


def _version(t: Target, headers, name: str, tags=()) -> str:
    run_id, source = _source(t, headers)
    response = t.call("POST", f"{API}/model-versions/create", headers, json={
        "name": name, "source": source, "run_id": run_id,
        "tags": [{"key": k, "value": v} for k, v in tags]})
    if response.status_code != 200:
        raise RuntimeError(f"model-versions/create answered {response.status_code}: "
                           f"{response.text[:150]}")
    return response.json()["model_version"]["version"]


def _model(t: Target, headers) -> str:
    name = f"rel-{uuid.uuid4().hex[:8]}"
    t.call("POST", f"{API}/registered-models/create", headers, json={"name": name})
    return name


def attack_7_index_race(t: Target, stop):
    _, headers = t.key()
    taken = 0
    for _ in range(10):
        token = f"race-{uuid.uuid4().hex[:8]}"
        name = _model(t, headers)
        first = _version(t, headers, name, [("hokusai_token_id", token)])
        second = _version(t, headers, name)
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            pool.submit(t.call, "DELETE", f"{API}/model-versions/delete-tag", headers,
                        json={"name": name, "version": first, "key": "hokusai_token_id"})
            pool.submit(t.call, "POST", f"{API}/model-versions/set-tag", headers,
                        json={"name": name, "version": second, "key": "hokusai_token_id",
                              "value": token})
        other = _model(t, headers)
        run_id, source = _source(t, headers)
        response = t.call("POST", f"{API}/model-versions/create", headers, json={
            "name": other, "source": source, "run_id": run_id,
            "tags": [{"key": "hokusai_token_id", "value": token}]})
        holder = t.call("GET", f"{API}/model-versions/get", headers,
                        params={"name": name, "version": second}).json()
        still_held = any(tag.get("key") == "hokusai_token_id"
                         for tag in holder.get("model_version", {}).get("tags", []))
        taken += response.status_code == 200 and still_held
    return [f"token taken by a second model while held, {taken} of 10 rounds"] if taken else []


def _index_answers(t: Target, headers, name: str, token: str) -> str:
    return json.dumps([t.call("GET", f"/models/by-token/{token}", headers).json(),
                       t.call("GET", f"/models/{name}/lineage", headers).json()], sort_keys=True)


def attack_8_index_vs_rebuild(t: Target, stop):
    _, headers = t.key()
    name, token = f"rel-{uuid.uuid4().hex[:8]}", f"tok-{uuid.uuid4().hex[:8]}"
    registered = t.call("POST", "/models/register-tokenized", headers, json={
        "model_uri": "mlflow-artifacts:/reliability/model", "model_name": name,
        "token_id": token, "metric_name": "accuracy", "baseline_value": 0.85})
    if registered.status_code != 201:
        return [f"register-tokenized answered {registered.status_code}: {registered.text[:100]}"]
    t.call("POST", f"{API}/model-versions/set-tag", headers,
           json={"name": name, "version": "1", "key": "benchmark_value", "value": "0.9"})
    second = _version(t, headers, name, [("hokusai_token_id", token),
                                         ("benchmark_metric", "accuracy")])
    t.call("POST", f"{API}/model-versions/set-tag", headers,
           json={"name": name, "version": second, "key": "benchmark_value", "value": "0.95"})
    live = _index_answers(t, headers, name, token)
    subprocess.run([str(BIN / "hokusai"), "db", "reindex", "--database-uri", t.database],
                   check=True, capture_output=True)
    rebuilt = _index_answers(t, headers, name, token)
    return [] if live == rebuilt else ["the live index and its rebuild answer differently"]


def attack_9_limit_times_workers(t: Target, stop):
    _, headers = t.key(rate_limit="20/minute")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: t.call("GET", f"{API}/experiments/search", headers,
                                               params={"max_results": 1}).status_code,
                              range(26)))
    served = codes.count(200)
    return [] if served == 20 else [f"{served} of 26 requests passed a limit of 20"]


def attack_10_lockout(t: Target, stop):
    for _ in range(25):
        requests.get(t.url + f"{API}/experiments/search", timeout=30,
                     headers={"X-API-Key": "hk_live_" + uuid.uuid4().hex[:30] + "AAAAAA"})
    return []


def attack_11_access_log(t: Target, stop):
    server = MlflowServer(t.workdir / "gunicorn", t.server.backend_uri, server="gunicorn",
                          workers=1, gunicorn_opts="--timeout 120 --access-logfile -").start()
    try:
        _, headers = t.key("read")
        key = headers["X-API-Key"]
        requests.get(server.url + f"{API}/experiments/search", timeout=30,
                     params={"api_key": key, "max_results": 1})
        time.sleep(0.5)
        return ["the key is in gunicorn's access log"] if key in server.log_path.read_text() \
            else []
    finally:
        server.stop()


def attack_12_errors_and_leaks(t: Target, stop):
    _, headers = t.key()
    _, admin = t.key("admin")
    huge = str(2**64)
    name = _model(t, headers)
    _version(t, headers, name)
    requests_ = [
        ("GET", "/models/?page_token=%C3%A9", None),
        ("GET", f"/models/{name}/{huge}", None),
        ("GET", f"/models/{name}/{huge}/lineage", None),
        ("GET", f"/models/{name}/{huge}/metrics", None),
        ("GET", f"/models/{name}/{huge}/predictions", None),
        ("POST", "/models/evaluate", {"model_name": name, "model_version": huge,
                                      "dataset_path": "x.csv", "target": "y"}),
        ("GET", f"/api/owners/model-versions/x/{huge}", None),
        ("POST", f"/models/{name}/1/transition", {"stage": "None", "archive_existing": True}),
        ("GET", f"/api/audit?since={huge}", None),
        ("GET", "/api/owners/experiments/%00", None),
        ("GET", "/api/audit?principal=%00", None),
        ("GET", "/models/by-token/a%00b", None),
        ("GET", f"/models/{name}/1/download", None),
        ("POST", f"{API}/experiments/create", []),
        ("POST", f"{API}/runs/search", "x"),
        ("POST", "/graphql", None),
    ]
    problems = []
    for method, path, body in requests_:
        kwargs = {"json": body} if body is not None else {}
        response = t.call(method, path, admin if "audit" in path else headers, **kwargs)
        leak = next((text for text in LEAKS if text in response.text), None)
        if response.status_code >= 500 or leak:
            problems.append(f"{method} {path[:40]} -> {response.status_code}"
                            + (f" naming {leak.strip()}" if leak else ""))
    response = t.call("POST", "/api/keys", admin, json={"name": "\ud800"})
    if response.status_code >= 500:
        problems.append(f"POST /api/keys name U+D800 -> {response.status_code}")
    return problems


def attack_13_mlflow_user(t: Target, stop):
    _, headers = t.key()
    run_id = t.run(headers)
    t.call("POST", f"{API}/runs/set-tag", headers,
           json={"run_id": run_id, "key": "mlflow.user", "value": "mallory"})
    run = t.call("GET", f"{API}/runs/get", headers, params={"run_id": run_id}).json()
    tags = {tag["key"]: tag["value"] for tag in run["run"]["data"].get("tags", [])}
    return ["mlflow.user rewritten to mallory"] if tags.get("mlflow.user") == "mallory" else []


ATTACKS = {
    1: ("audit records erased by a poisoned request", attack_1_audit_poison),
    2: ("read key opens the circuit breaker", attack_2_breaker),
    3: ("large bodies take a worker down", attack_3_large_bodies),
    4: ("random methods inflate the metrics", attack_4_metric_labels),
    5: ("anonymous /health flood", attack_5_health_flood),
    6: ("artifact_location outside the roots", attack_6_artifact_location),
    7: ("registry index race", attack_7_index_race),
    8: ("index and its rebuild disagree", attack_8_index_vs_rebuild),
    9: ("limits multiplied by the workers", attack_9_limit_times_workers),
    10: ("lockout shuts out valid keys", attack_10_lockout),
    11: ("keys in gunicorn's access log", attack_11_access_log),
    12: ("5xx answers and leaks", attack_12_errors_and_leaks),
    13: ("mlflow.user rewritten", attack_13_mlflow_user),
}
# The lockout leaves this address locked out for a while: it goes last.
ORDER = [n for n in ATTACKS if n != 10] + [10]


def verdict(seen: dict, baseline_rate: float, seconds: float, audited: int,
            problems: list[str]) -> str:
    problems = list(problems)
    refused = seen["sent"] - seen["served"]
    if refused:
        statuses = {s: c for s, c in seen["statuses"].items() if s != 200}
        problems.append(f"admin refused {refused} times {statuses}")
    if audited < seen["writes_audited"]:
        problems.append(f"{seen['writes_audited'] - audited} audit records lost")
    rate = seen["sent"] / seconds
    if baseline_rate and rate < 0.5 * baseline_rate:
        problems.append(f"admin throughput fell to {rate / baseline_rate:.0%} of baseline")
    return "no effect" if not problems else "; ".join(problems)


def start(args, workdir: Path, database: str) -> Target:
    # The attacks register many models with one key each: the registration
    # route limit (20/minute) is raised so that they can.
    server = MlflowServer(workdir / "uvicorn", database, workers=args.workers, env={
        "HOKUSAI_AUTH_LOCKOUT_SECONDS": "5",
        "HOKUSAI_ROUTE_LIMITS": "registration=100000/minute,lineage=100/minute,"
                                "contributor_impact=100/minute"}).start()
    return Target(server, database, args, workdir)


def main():
    args = parse_args()
    only = {int(n) for n in args.only.split(",") if n} or set(ATTACKS)
    with postgres_databases("hokusai_reliability") as make_db, \
            tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        database = make_db() if args.backend == "postgresql" else \
            f"sqlite:///{workdir}/mlflow.db"
        subprocess.run([str(BIN / "hokusai"), "db", "upgrade", "--database-uri", database],
                       check=True, capture_output=True)
        target = start(args, workdir, database)
        try:
            admin = Admin(target)
            admin.new_run()
            stop = threading.Event()
            timer = threading.Timer(args.seconds, stop.set)
            timer.start()
            seen = admin.work(stop)
            baseline = seen["sent"] / args.seconds
            print(f"Baseline: the admin alone made {baseline:.1f} requests/s "
                  f"({args.backend}, uvicorn {args.workers} workers)")
            lines = {}
            for number in (n for n in ORDER if n in only):
                title, attack = ATTACKS[number]
                seen, problems, audited = during(admin, lambda s, attack=attack: attack(target, s),
                                                 args.seconds)
                lines[number] = (f"{number:>2}. {title:<45} admin {seen['served']}/"
                                 f"{seen['sent']} served, audit {audited}/"
                                 f"{seen['writes_audited']}: "
                                 f"{verdict(seen, baseline, args.seconds, audited, problems)}")
                print(lines[number], flush=True)
            print("\nIn the issue's order:")
            for number in sorted(lines):
                print(lines[number])
        finally:
            target.server.stop()


if __name__ == "__main__":
    main()
