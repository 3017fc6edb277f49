"""Counting with the ``limits`` library (moving window: the window really moves,
and a refused request is not counted), and the pipeline steps that use it.

Storage is by default a SQLite file shared by the workers of one server
(``filestorage``): exact across them. Redis, where the moving window is one
atomic Lua script, makes it exact across servers too. ``memory://`` counts per
process (each worker alone).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable
from typing import Any

import limits
from limits.errors import StorageError
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from mlflow_hokusai import signals
from mlflow_hokusai.errors import AuthenticationFailed, RateLimited, ServiceUnavailable
from mlflow_hokusai.pipeline import LookupNeeded, RequestContext
from mlflow_hokusai.plugins.ratelimit.addresses import ClientAddresses
from mlflow_hokusai.plugins.ratelimit.filestorage import SqliteFileStorage
from mlflow_hokusai.plugins.ratelimit.policy import Policy
from mlflow_hokusai.serverdir import server_dir

# Credentials that were presented and wrong. A request with none ("missing") is
# not a guess: a browser opening the UI makes several before it prompts.
COUNTED_FAILURES = {"malformed", "invalid", "expired", "revoked"}
# After a storage error, stop trying for this long: a dead Redis must not add a
# timeout to every request.
_STORAGE_BACKOFF_SECONDS = 1.0
# A key verified in the store within this long is "known": a locked-out address
# presenting it is still served (see Lockout).
KNOWN_KEY_SECONDS = 24 * 3600
LOCKOUT_DETAIL = "Too many failed authentication attempts from this address"
_logger = logging.getLogger(__name__)


class StorageDown(Exception):
    pass


def _headers(item: limits.RateLimitItem, stats) -> list[tuple[str, str]]:
    return [("X-RateLimit-Limit", str(item.amount)),
            ("X-RateLimit-Remaining", str(stats.remaining)),
            ("X-RateLimit-Reset", str(math.ceil(stats.reset_time)))]


def _retry_after(stats) -> int:
    return max(1, math.ceil(stats.reset_time - time.time()))


@dataclasses.dataclass(frozen=True)
class Lockout:
    """Left in ``context.notes["lockout"]`` for the gate when the client address
    is locked out: the lockout stops guessing, not the users behind the address.
    The gate still serves a credential it can verify without a guess (a JWT, a
    key this worker verified before, or one any worker verified within
    ``KNOWN_KEY_SECONDS``) and answers ``refusal()`` instead of looking up any
    other key."""

    retry_after: int
    knows: Callable[[str], bool]  # key hash -> verified recently by some worker

    def refusal(self) -> RateLimited:
        signals.rate_limited.send(self, reason="lockout")
        return RateLimited(self.retry_after, detail=LOCKOUT_DETAIL)


def _storage(settings):
    uri = settings.rate_limit_storage_uri or \
        f"{SqliteFileStorage.STORAGE_SCHEME[0]}://{server_dir('limits')}/limits.db"
    options: dict[str, Any] = {"wrap_exceptions": True}
    if uri.startswith("redis"):
        options |= {"key_prefix": settings.rate_limit_key_prefix,
                    "socket_connect_timeout": 0.5, "socket_timeout": 0.5}
    return storage_from_string(uri, **options)


class Limiter:
    def __init__(self, settings):
        self.storage = _storage(settings)
        self.strategy = MovingWindowRateLimiter(self.storage)
        self.needs_io = not isinstance(self.storage, MemoryStorage)
        # A storage of another host (Redis): /health reports it as a service.
        self.external = not isinstance(self.storage, (MemoryStorage, SqliteFileStorage))
        self.policy = Policy(settings)
        self.addresses = ClientAddresses(settings.trusted_proxies)
        self.fail_open = settings.rate_limit_fail_mode == "open"
        self.retry_after_seconds = settings.retry_after_seconds
        self.auth_failures = limits.parse(settings.auth_failure_limit)
        self.lockout = limits.RateLimitItemPerSecond(1, settings.auth_lockout_seconds)
        self.public = limits.parse(settings.public_rate_limit)
        self._skip_until = 0.0

    # -- storage access, with the fail-open / fail-closed decision in one place

    def _call(self, method, *args):
        if time.monotonic() < self._skip_until:
            raise StorageDown
        try:
            return method(*args)
        except StorageError as exc:
            self._skip_until = time.monotonic() + _STORAGE_BACKOFF_SECONDS
            _logger.warning("Rate-limit storage failed: %s", type(exc.storage_error).__name__)
            signals.rate_limit_storage_failed.send(self)
            raise StorageDown from None

    def _unavailable(self):
        if self.fail_open:
            return  # let the request through; /health reports the storage
        raise ServiceUnavailable("Rate-limit storage unavailable",
                                 retry_after=self.retry_after_seconds)

    def service_state(self) -> str:
        if not self.external:
            return "disabled"
        try:
            return "healthy" if self.storage.check() else "unhealthy"
        except Exception:  # noqa: BLE001 - a health probe reports, it never raises
            return "unhealthy"

    def ping(self) -> None:
        if self.service_state() != "healthy":
            raise ConnectionError("rate-limit storage unreachable")

    # -- pipeline steps

    def run_in_thread(self, context: RequestContext, allow_io: bool) -> None:
        """With a shared storage (file or Redis) every step talks to it: run the
        whole pipeline in a thread from the start, so no step (and no metric)
        runs twice."""
        if self.needs_io and not allow_io:
            raise LookupNeeded

    def check_public(self, context: RequestContext, allow_io: bool) -> None:
        """Public routes (health, version, metrics, the UI's files) are limited
        per client address: anyone can call them."""
        if not context.public:
            return
        address = self.addresses.of(context.request)
        try:
            if self._call(self.strategy.hit, self.public, "public", address):
                return
            stats = self._call(self.strategy.get_window_stats, self.public, "public", address)
        except StorageDown:
            return  # health must keep answering while the storage is down
        signals.rate_limited.send(self, reason="public")
        raise RateLimited(_retry_after(stats), _headers(self.public, stats))

    def check_lockout(self, context: RequestContext, allow_io: bool) -> None:
        if context.public:
            return
        address = context.notes["client_address"] = self.addresses.of(context.request)
        try:
            if self._call(self.strategy.test, self.lockout, "lockout", address):
                return
            stats = self._call(self.strategy.get_window_stats, self.lockout, "lockout", address)
        except StorageDown:
            return self._unavailable()
        context.notes["lockout"] = Lockout(_retry_after(stats), self.knows)

    @staticmethod
    def _known_key(key_hash: str) -> str:
        return f"hokusai/known-key/{key_hash[:32]}"

    def mark_known(self, sender, key_hash: str) -> None:
        """Signal receiver: a key the store found active is known, to every worker."""
        try:
            self._call(self.storage.incr, self._known_key(key_hash), KNOWN_KEY_SECONDS)
        except StorageDown:
            pass

    def knows(self, key_hash: str) -> bool:
        try:
            return self._call(self.storage.get, self._known_key(key_hash)) > 0
        except StorageDown:
            return False

    def check_key(self, context: RequestContext, allow_io: bool) -> None:
        principal = context.principal
        if context.public or principal is None:
            return
        identity = principal.key_id or principal.label
        key_item = self.policy.key_limit(principal)
        assert context.route is not None  # resolved by the first step
        route = self.policy.route_limit(context.route.rate_group)
        try:
            if route:
                group, route_item = route
                # Test the key first so a refused key does not use up route budget.
                if not self._call(self.strategy.test, key_item, "key", identity):
                    self._refuse(context, "key", key_item, "key", identity)
                if not self._call(self.strategy.hit, route_item, "route", group, identity):
                    self._refuse(context, "route", route_item, "route", group, identity)
            if not self._call(self.strategy.hit, key_item, "key", identity):
                self._refuse(context, "key", key_item, "key", identity)
            stats = self._call(self.strategy.get_window_stats, key_item, "key", identity)
            headers = _headers(key_item, stats)
            if route:
                route_stats = self._call(self.strategy.get_window_stats, route_item, "route",
                                         group, identity)
                if route_stats.remaining < stats.remaining:
                    headers = _headers(route_item, route_stats)
        except StorageDown:
            return self._unavailable()
        context.response_headers.extend(headers)

    def _refuse(self, context, reason, item, *identifiers):
        stats = self._call(self.strategy.get_window_stats, item, *identifiers)
        signals.rate_limited.send(self, reason=reason)
        raise RateLimited(_retry_after(stats), _headers(item, stats))

    def count_failure(self, context: RequestContext, error, allow_io: bool) -> None:
        """Refusal hook: wrong credentials count against the client address; one
        too many locks the address out."""
        if not isinstance(error, AuthenticationFailed) or error.reason not in COUNTED_FAILURES:
            return
        if self.needs_io and not allow_io:
            raise LookupNeeded
        address = context.notes.get("client_address") or self.addresses.of(context.request)
        try:
            if self._call(self.strategy.hit, self.auth_failures, "auth-failures", address):
                return
            self._call(self.strategy.hit, self.lockout, "lockout", address)
        except StorageDown:
            return
        _logger.warning("Client %s locked out after repeated failed authentication", address)
        signals.rate_limited.send(self, reason="lockout")
        raise RateLimited(self.lockout.get_expiry(), detail=LOCKOUT_DETAIL)
