"""Events plugins can subscribe to (blinker signals, as Flask itself uses).

Emitters do not know who listens: the metrics plugin counts these, and a
deployment can connect its own receivers (audit shipping, alerting). The
signals are process-wide; an app's plugins connect through its ``Receivers``
(``Hokusai.connect``), so that a second app in the process hears its own events
only.
"""

import flask
from blinker import ANY, Namespace

_signals = Namespace()


class Receivers:
    """The receivers of one app, held for as long as it lives (blinker keeps
    weak references)."""

    def __init__(self, app_object):
        self._app = app_object
        self._held: list = []

    def connect(self, signal, receiver, sender=ANY) -> None:
        """``sender``: one of this app's own objects (its pipeline, gate, breaker,
        limiter), whose events are this app's. Events of shared senders (MLflow's
        stores, worker threads) are this app's unless sent in another app's
        Flask context."""
        if sender is ANY:
            receiver = self._own_only(receiver)
        self._held.append(receiver)
        signal.connect(receiver, sender=sender)

    def disconnect(self) -> None:
        for receiver in self._held:
            for signal in _signals.values():
                signal.disconnect(receiver)
        self._held.clear()

    def _own_only(self, receiver):
        def receive(sender, **event):
            if flask.has_app_context() and \
                    flask.current_app.extensions.get("hokusai") is not self._app:
                return None
            return receiver(sender, **event)

        return receive

#: ``outcome``: ok, missing, malformed, invalid, expired, revoked, forbidden, unavailable.
auth_decided = _signals.signal("auth-decided")
#: ``hit``: whether a verified key came from the worker's cache.
key_cache_used = _signals.signal("key-cache-used")
#: ``key_hash``: a key was read from the key store and found active.
key_verified = _signals.signal("key-verified")
#: ``old``, ``new``: circuit breaker states (closed, open, half_open).
breaker_changed = _signals.signal("breaker-changed")
#: ``reason``: key, route, lockout or public; a request refused with 429.
rate_limited = _signals.signal("rate-limited")
#: The rate-limit storage (Redis) failed; the request passed (fail-open) or got 503.
rate_limit_storage_failed = _signals.signal("rate-limit-storage-failed")
#: ``context``, ``status``, ``seconds``: once per HTTP request, answered or refused,
#: when the response starts (``seconds`` is the time to the response's start);
#: sent by the app's pipeline.
request_finished = _signals.signal("request-finished")
#: ``count``: audit records a worker could not store (queue full or database down).
audit_dropped = _signals.signal("audit-dropped")
#: ``event`` (version_registered, benchmark_measured, contributor_linked,
#: contributor_unlinked, value_superseded), ``token_id``, ``model_name``, ``version``,
#: ``principal``, ``data`` (a JSON-able dict): a contribution a payout may rest on.
#: The ledger appends each one to its hash chain.
contribution_recorded = _signals.signal("contribution-recorded")
#: ``model_name``, ``version``, ``value``: a version's ``benchmark_value`` tag was
#: written (by any route, after MLflow's write). plugins/benchmarks judges whether
#: it counts as verified (an ``evaluator`` key's) or supersedes a verified value.
benchmark_tag_set = _signals.signal("benchmark-tag-set")
#: ``model_name``, ``version``, ``request_id``, ``records`` (how many), ``predictions``
#: (a list, None when it failed), ``latency_ms``, ``error`` (the error code, None when
#: answered), ``user``: once per prediction request to a deployment (plugins.serving).
#: plugins.monitoring records them for its performance report and feedback.
prediction_served = _signals.signal("prediction-served")
#: ``session``, ``name``, ``new_name`` (None: deleted; never ``name``): a registered
#: model is being deleted or renamed, sent by the registry store in MLflow's write
#: transaction (``session``, MLflow's SQLAlchemy session). Whatever a plugin keeps
#: under the name follows it (mlflow_hokusai.db.model_rows); a receiver that raises
#: rolls MLflow's change back. Also sent as a deletion (``new_name`` None) when a
#: model is created: what a model of its name deleted outside the server left goes.
model_changed = _signals.signal("model-changed")
