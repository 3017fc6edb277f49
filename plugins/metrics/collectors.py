"""The metric families, and the signal receivers that move them."""

from __future__ import annotations

import mlflow
from blinker import ANY
from prometheus_client import Counter, Gauge, Histogram

import mlflow_hokusai
from mlflow_hokusai import signals
from mlflow_hokusai.routes import UNMATCHED

REQUESTS = Counter("hokusai_http_requests_total", "HTTP requests answered",
                   ["method", "route", "status"])
LATENCY = Histogram("hokusai_http_request_duration_seconds", "HTTP request latency",
                    ["method", "route", "status"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
AUTH = Counter("hokusai_auth_attempts_total", "Authentication outcomes", ["outcome"])
KEY_CACHE = Counter("hokusai_key_cache_lookups_total", "Verified-key cache lookups", ["result"])
BREAKER_STATE = Gauge("hokusai_circuit_breaker_state",
                      "Circuit breaker state per worker: 0 closed, 1 half-open, 2 open",
                      multiprocess_mode="liveall")
BREAKER_TRANSITIONS = Counter("hokusai_circuit_breaker_transitions_total",
                              "Circuit breaker state changes", ["from_state", "to_state"])
RATE_LIMITED = Counter("hokusai_rate_limit_rejections_total", "Requests refused with 429",
                       ["reason"])
AUDIT_DROPPED = Counter("hokusai_audit_dropped_total",
                        "Audit records a worker could not store")
RATE_LIMIT_STORAGE_ERRORS = Counter("hokusai_rate_limit_storage_errors_total",
                                    "Rate-limit storage (Redis) failures")
BUILD_INFO = Gauge("hokusai_build_info", "Build information", ["version", "mlflow_version",
                                                                "git_commit"],
                   multiprocess_mode="max")
_STATE_VALUES = {"closed": 0, "half_open": 1, "open": 2}
# Label values come from closed sets: anyone can send any method string, and
# each new label value is a new series in every worker's file, forever.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER = "other"


def request_labels(method: str, route: str, status: int) -> tuple[str, str, str]:
    """(method, route, status) labels of an answered request; ``route`` is already
    a template of the app or ``unmatched``."""
    return (method if method in KNOWN_METHODS else OTHER,
            route if method in KNOWN_METHODS else OTHER,
            str(status) if 100 <= status <= 599 else OTHER)


def subscribe(flask_app, hokusai) -> None:
    def on_request(sender, context, status, seconds):
        request = context.request
        route = context.route.template if context.route else UNMATCHED
        labels = request_labels(request.method, route, status)
        REQUESTS.labels(*labels).inc()
        LATENCY.labels(*labels).observe(seconds)

    def on_auth(sender, outcome):
        AUTH.labels(outcome).inc()

    def on_cache(sender, hit):
        KEY_CACHE.labels("hit" if hit else "miss").inc()

    def on_breaker(sender, old, new):
        BREAKER_TRANSITIONS.labels(old, new).inc()
        BREAKER_STATE.set(_STATE_VALUES[new])

    def on_rate_limited(sender, reason):
        RATE_LIMITED.labels(reason).inc()

    def on_storage_failed(sender):
        RATE_LIMIT_STORAGE_ERRORS.inc()

    def on_audit_dropped(sender, count):
        AUDIT_DROPPED.inc(count)

    # Each from the app's own sender, so that another app's events are not counted.
    for signal, receiver, sender in ((signals.request_finished, on_request, hokusai.pipeline),
                                     (signals.audit_dropped, on_audit_dropped, ANY),
                                     (signals.auth_decided, on_auth, hokusai.gate),
                                     (signals.key_cache_used, on_cache, hokusai.gate),
                                     (signals.breaker_changed, on_breaker, hokusai.breaker)):
        hokusai.connect(signal, receiver, sender)
    if hokusai.limiter is not None:
        hokusai.connect(signals.rate_limited, on_rate_limited, hokusai.limiter)
        hokusai.connect(signals.rate_limit_storage_failed, on_storage_failed, hokusai.limiter)
    BREAKER_STATE.set(_STATE_VALUES[hokusai.breaker.state])
    BUILD_INFO.labels(mlflow_hokusai.__version__, mlflow.__version__,
                      hokusai.settings.git_commit).set(1)
