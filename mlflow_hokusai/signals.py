"""Events plugins can subscribe to (blinker signals, as Flask itself uses).

Emitters do not know who listens: the metrics plugin counts these, and a
deployment can connect its own receivers (audit shipping, alerting).
"""

from blinker import Namespace

_signals = Namespace()

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
#: when the response starts (``seconds`` is the time to the response's start).
request_finished = _signals.signal("request-finished")
#: ``count``: audit records a worker could not store (queue full or database down).
audit_dropped = _signals.signal("audit-dropped")
