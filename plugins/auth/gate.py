"""The first pipeline step: public route, or which principal, or which refusal.

Framework-free; see mlflow_hokusai.asgi / wsgi for the adapters.
"""

from __future__ import annotations

import dataclasses
import logging
import time

import sqlalchemy.exc

from mlflow_hokusai import signals
from mlflow_hokusai.errors import (
    AuthenticationFailed,
    PermissionDenied,
    RouteNotClassified,
    ServiceUnavailable,
)
from mlflow_hokusai.pipeline import LookupNeeded, RequestContext
from mlflow_hokusai.plugins.auth import credentials, keys, permissions, scopes
from mlflow_hokusai.plugins.auth.jwt_tokens import JwtVerifier
from mlflow_hokusai.plugins.auth.keystore import ApiKey, KeyStore
from mlflow_hokusai.settings import TIERS

_logger = logging.getLogger(__name__)
_MAX_CACHED_KEYS = 10_000


@dataclasses.dataclass(frozen=True)
class Principal:
    username: str
    kind: str  # "api_key" or "jwt"
    scopes: frozenset[str]
    key_id: str | None = None
    tier: str | None = None
    rate_limit: str | None = None  # the key's own limit, overriding its tier's
    label: str = ""  # safe to log: a key's id and prefix, or a JWT subject
    # MLflow workspaces it may enter ("*" among them: all); None: unbound.
    workspaces: frozenset[str] | None = None


def _tenant(claims) -> frozenset[str] | None:
    """A JWT's ``tenant_id`` claim (one name or a list) as workspaces."""
    raw = claims.get("tenant_id")
    if raw is None:
        return None
    names = raw if isinstance(raw, list) else [raw]
    return frozenset(str(name) for name in names if str(name))


class MarkPublic:
    """First step: later steps (breaker, auth, limits) leave public routes alone.
    ``public_paths``: those the app's plugins declared (its route table's)."""

    def __init__(self, public_paths: set[str]):
        self.public_paths = public_paths

    def __call__(self, context: RequestContext, allow_io: bool) -> None:
        request = context.request
        context.public = permissions.is_public(request.method, request.path, request.headers,
                                               self.public_paths)


class Gate:
    def __init__(self, settings, keystore: KeyStore, *, clock=time.time,
                 monotonic=time.monotonic):
        """``clock`` (wall seconds: keys' expiry, last use) and ``monotonic``
        (the cache's age) are injected by tests that move time by hand."""
        self.settings = settings
        self.keystore = keystore
        self._clock = clock
        self._monotonic = monotonic
        self.jwt = JwtVerifier(settings)
        # Reads a session cookie's key id (plugins/browser sets it when sessions are on).
        self.sessions = None
        # By ("hash", key hash) or ("id", key id): a session is re-checked as
        # often as the key it names, so revoking the key ends it as quickly.
        self._cache: dict[tuple[str, str], tuple[float, ApiKey]] = {}

    def __call__(self, context: RequestContext, allow_io: bool) -> None:
        if context.public:
            return
        request = context.request
        try:
            # Known before authorization, so that a refused write is audited as theirs.
            context.principal = self.identify(request, allow_io=allow_io,
                                              lockout=context.notes.get("lockout"))
            self.authorize(context.route, context.principal, request)
        except (AuthenticationFailed, PermissionDenied, RouteNotClassified) as refusal:
            signals.auth_decided.send(self, outcome=refusal.reason)
            raise
        except ServiceUnavailable:
            signals.auth_decided.send(self, outcome="unavailable")
            raise
        signals.auth_decided.send(self, outcome="ok")

    def identify(self, request, *, allow_io: bool = True, lockout=None) -> Principal:
        """``lockout`` (plugins.ratelimit.limiter.Lockout): the client address is
        locked out, so no key may be looked up unless it is known to be valid."""
        credential = self.credential(request)
        if credential is None:
            raise AuthenticationFailed("missing")
        return self.authenticate(credential, allow_io=allow_io, lockout=lockout)

    def credential(self, request) -> credentials.Credential | None:
        return credentials.extract(request, allow_query=self.settings.allow_query_key,
                                   allow_session=self.sessions is not None)

    @staticmethod
    def authorize(route, principal: Principal, request) -> None:
        if not route.classified:
            _logger.warning("Refused %s: route %s is not in the route table",
                            route.template, route.key)
            raise RouteNotClassified(route.template)
        needed = route.scope
        if not scopes.grants(principal.scopes, needed):
            _logger.info("Refused %s %s to %s: lacks %s scope",
                         request.method, request.path, principal.label, needed)
            raise PermissionDenied(needed)

    def authenticate(self, credential: credentials.Credential, *, allow_io: bool,
                     lockout=None) -> Principal:
        if credential.kind == "bearer" and not keys.looks_like_key(credential.value):
            claims = self.jwt.verify(credential.value)
            tier = claims.get("tier") if claims.get("tier") in TIERS else \
                self.settings.default_tier
            return Principal(username=str(claims["sub"]), kind="jwt", scopes=claims["scopes"],
                             tier=tier, label=f"jwt:{claims['sub']}",
                             workspaces=_tenant(claims))
        if credential.kind == "session":
            if self.sessions is None:
                raise AuthenticationFailed("invalid")
            lookup = ("id", self.sessions.key_id(credential.value))
        elif not keys.is_well_formed(credential.value):
            raise AuthenticationFailed("malformed")
        else:
            lookup = ("hash", keys.hash_key(credential.value))
        record = self._cached(lookup)
        if record is None:
            # A locked-out address guesses no more: only a key this worker or
            # another verified before (a refresh, not a guess) is looked up.
            # A session is signed by the server, so it is never a guess.
            if lockout is not None and lookup[0] == "hash" and lookup not in self._cache and \
                    not lockout.knows(lookup[1]):
                raise lockout.refusal()
            if not allow_io:
                raise LookupNeeded
            record = self._load(lookup)
        else:
            signals.key_cache_used.send(self, hit=True)
        state = record.state(self._now_ms())
        if state != "active":
            _logger.info("Refused API key %s (%s): %s", record.id, record.prefix, state)
            raise AuthenticationFailed(state)
        via = " via session" if credential.kind == "session" else ""
        return Principal(username=record.owner, kind="api_key", scopes=frozenset(record.scopes),
                         key_id=record.id, tier=record.tier, rate_limit=record.rate_limit,
                         label=f"{record.id} ({record.prefix}){via}",
                         workspaces=frozenset(record.workspaces.split(","))
                         if record.workspaces else None)

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _cached(self, lookup: tuple[str, str]) -> ApiKey | None:
        entry = self._cache.get(lookup)
        if entry is None or self._monotonic() - entry[0] > self.settings.key_cache_ttl_seconds:
            return None
        return entry[1]

    def _load(self, lookup: tuple[str, str]) -> ApiKey:
        signals.key_cache_used.send(self, hit=False)
        by, value = lookup
        try:
            record = self.keystore.find_by_hash(value) if by == "hash" else \
                self.keystore.find_by_id(value)
            if record is None:
                raise AuthenticationFailed("invalid")
            now = self._now_ms()
            interval_ms = int(self.settings.last_used_interval_seconds * 1000)
            if record.state(now) == "active" and \
                    (record.last_used_at is None or record.last_used_at < now - interval_ms):
                self.keystore.touch(record.id, now, interval_ms)
        except sqlalchemy.exc.SQLAlchemyError as exc:
            _logger.warning("Key store unreachable: %s", type(exc).__name__)
            raise ServiceUnavailable("Authentication service unavailable",
                                     retry_after=self.settings.retry_after_seconds) from None
        if len(self._cache) >= _MAX_CACHED_KEYS:
            self._cache.clear()
        self._cache[lookup] = (self._monotonic(), record)
        if by == "hash" and record.state(self._now_ms()) == "active":
            signals.key_verified.send(self, key_hash=value)
        return record
