"""Metric values move as requests are made, summed over both workers of a server,
labelled by route template (never the raw path)."""

import concurrent.futures
import re
import uuid

import requests

from tests.support.metrics import delta, scrape


def fire(count, call):
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda _: call(), range(count)))


def test_request_and_auth_metrics_move_across_two_workers(each_server_kind):
    server = each_server_kind
    key = server.create_key("read")
    headers = {"X-API-Key": key}
    run_id = "0" * 32
    before = scrape(server)

    fire(40, lambda: requests.get(f"{server.url}/api/2.0/mlflow/runs/get",
                                  params={"run_id": run_id}, headers=headers, timeout=30))
    fire(5, lambda: requests.get(f"{server.url}/api/2.0/mlflow/runs/get", timeout=30))
    fire(3, lambda: requests.get(f"{server.url}/api/2.0/mlflow/runs/get",
                                 headers={"X-API-Key": "hk_live_nope"}, timeout=30))
    fire(2, lambda: requests.post(f"{server.url}/api/2.0/mlflow/experiments/create",
                                  json={"name": uuid.uuid4().hex}, headers=headers, timeout=30))
    fire(4, lambda: requests.get(f"{server.url}/api/2.0/mlflow/no-such-route-{uuid.uuid4()}",
                                 headers=headers, timeout=30))
    after = scrape(server)

    route = "/api/2.0/mlflow/runs/get"
    # 40 authenticated requests for a run that does not exist: MLflow answers 404.
    assert delta(before, after, "hokusai_http_requests_total", method="GET", route=route,
                 status="404") == 40
    assert delta(before, after, "hokusai_http_requests_total", method="GET", route=route,
                 status="401") == 8
    assert delta(before, after, "hokusai_http_request_duration_seconds_count", method="GET",
                 route=route, status="404") == 40
    assert delta(before, after, "hokusai_auth_attempts_total", outcome="missing") == 5
    assert delta(before, after, "hokusai_auth_attempts_total", outcome="malformed") == 3
    assert delta(before, after, "hokusai_auth_attempts_total", outcome="forbidden") == 2
    assert delta(before, after, "hokusai_auth_attempts_total", outcome="ok") == 44
    hits = delta(before, after, "hokusai_key_cache_lookups_total", result="hit")
    misses = delta(before, after, "hokusai_key_cache_lookups_total", result="miss")
    assert hits + misses == 46 and misses >= 1
    assert delta(before, after, "hokusai_http_requests_total", method="GET", route="unmatched",
                 status="404") == 4
    # Unknown paths never become label values.
    assert not any("no-such-route" in str(labels) for _, labels in after)
    # Both workers report (multiprocess mode), one breaker-state series each.
    pids = {dict(labels)["pid"] for name, labels in after
            if name == "hokusai_circuit_breaker_state"}
    assert len(pids) >= 2


def test_fastapi_native_routes_are_measured(uvicorn_sqlite):
    key = uvicorn_sqlite.create_key("read")
    before = scrape(uvicorn_sqlite)
    fire(6, lambda: requests.get(f"{uvicorn_sqlite.url}/ajax-api/3.0/jobs/{uuid.uuid4().hex}",
                                 headers={"X-API-Key": key}, timeout=30))
    after = scrape(uvicorn_sqlite)
    # Series other tests made (test_route_coverage's 401s) are left out: only moves count.
    changed = {dict(labels)["route"]: after[(name, labels)] - before.get((name, labels), 0)
               for name, labels in after
               if name == "hokusai_http_requests_total" and
               re.search("jobs", dict(labels)["route"]) and
               after[(name, labels)] != before.get((name, labels), 0)}
    assert changed == {"/ajax-api/3.0/jobs/{job_id}": 6}


def test_labels_come_from_closed_sets(each_server_kind):
    """Random method strings must not become label values (each one a new series
    in every worker's file): they are counted as ``other``."""
    server = each_server_kind
    before = scrape(server)
    methods = [f"X{uuid.uuid4().hex[:10].upper()}" for _ in range(5)]
    for method in methods:
        requests.request(method, f"{server.url}/api/2.0/mlflow/runs/get", timeout=30)
    after = scrape(server)
    assert not any(method in str(labels) for method in methods for _, labels in after)
    assert sum(delta(before, after, "hokusai_http_requests_total", method="other",
                     route="other", status=str(status)) for status in (400, 401, 405)) == 5


def test_label_sets_are_closed():
    from mlflow_hokusai.plugins.metrics.collectors import request_labels

    assert request_labels("GET", "/api/2.0/mlflow/runs/get", 200) == \
        ("GET", "/api/2.0/mlflow/runs/get", "200")
    assert request_labels("BREW", "/x", 200) == ("other", "other", "200")
    assert request_labels("POST", "unmatched", 999) == ("POST", "unmatched", "other")
