"""``GET /metrics``: every worker's metrics, merged."""

import flask
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess


def metrics():
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return flask.Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
