"""API keys in the database: create, list, revoke, rotate, and look up by hash.

Shared by the CLI, the ``/api/keys`` blueprint and the gate, so all three apply
the same validation. Only the hash of a key is stored; the plaintext leaves
this module once, as the return value of ``create``/``rotate``.
"""

from __future__ import annotations

import dataclasses
import datetime
import hmac
import math
import re
import secrets
import time

import sqlalchemy as sa

from mlflow_hokusai.db.schema import api_keys
from mlflow_hokusai.errors import BadRequest, Conflict, NotFound
from mlflow_hokusai.plugins.auth import keys, scopes
from mlflow_hokusai.settings import TIERS

DEFAULT_SCOPES = (scopes.READ, scopes.WRITE)
_KEY_ID = re.compile(r"[0-9a-f]{16}")
MAX_EXPIRY_DAYS = 3650


def now_ms() -> int:
    return int(time.time() * 1000)


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).isoformat()


@dataclasses.dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    owner: str
    prefix: str
    scopes: tuple[str, ...]
    tier: str
    created_at: int
    expires_at: int | None
    last_used_at: int | None
    revoked: bool
    revoked_at: int | None
    rotated_from: str | None
    rate_limit: str | None
    rotated_to: str | None
    workspaces: str | None = None  # "a,b", "*" (all), or None (unbound)

    @classmethod
    def from_row(cls, row) -> ApiKey:
        values = {f.name: getattr(row, f.name) for f in dataclasses.fields(cls)}
        values["scopes"] = tuple(row.scopes.split(","))
        values["revoked"] = bool(row.revoked)
        return cls(**values)

    def state(self, at_ms: int) -> str:
        if self.revoked:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= at_ms:
            return "expired"
        return "active"

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["scopes"] = list(self.scopes)
        data["workspaces"] = self.workspaces.split(",") if self.workspaces else None
        for name in ("created_at", "expires_at", "last_used_at", "revoked_at"):
            data[name] = _iso(data[name])
        data["state"] = self.state(now_ms())
        return data


def _name(value, field: str = "name") -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 255 or \
            any(ord(c) < 32 or ord(c) == 127 or 0xD800 <= ord(c) <= 0xDFFF for c in value):
        # Surrogates: no database encodes them (a CLI argument can carry one).
        raise BadRequest(f"{field} must be a non-empty string of at most 255 characters, "
                         "without control characters or unpaired UTF-16 surrogates")
    return value.strip()


def _key_id(value: str) -> str:
    # Ids are 16 hex digits; anything else cannot exist (and must not reach the
    # database driver: a NUL byte is a driver error on PostgreSQL).
    if not _KEY_ID.fullmatch(value):
        raise NotFound(f"API key not found: {value[:40]!r}")
    return value


def _scopes(value) -> tuple[str, ...]:
    if not isinstance(value, (str, list, tuple)):
        raise BadRequest("scopes must be a list or a comma-separated string")
    try:
        return scopes.parse(value)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


_WORKSPACE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}|\*")


def _workspaces(value) -> str | None:
    """A key's MLflow workspaces: a list or comma-separated names, or "*"."""
    if value is None:
        return None
    names = value.split(",") if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not names or \
            not all(isinstance(n, str) and _WORKSPACE.fullmatch(n.strip()) for n in names):
        raise BadRequest("workspaces must be workspace names (letters, digits, '.', '_', "
                         "'-', at most 63) or '*', as a list or comma-separated")
    joined = ",".join(sorted({n.strip() for n in names}))
    if len(joined) > 1000:
        raise BadRequest("workspaces: too many names")
    return joined


def _tier(value) -> str:
    if value not in TIERS:
        raise BadRequest(f"tier must be one of {', '.join(TIERS)}")
    return value


def _rate_limit(value) -> str | None:
    import limits

    if value is None:
        return None
    try:
        if not isinstance(value, str) or len(value) > 64:
            raise ValueError
        limits.parse(value)
    except ValueError:
        raise BadRequest("rate_limit must be a limit such as '500/minute' or "
                         "'10 per 5 seconds'") from None
    return value.strip()


def _expiry(days, start_ms: int) -> int | None:
    if days is None:
        return None
    if isinstance(days, bool) or not isinstance(days, (int, float)) or not math.isfinite(days) \
            or not 0 < days <= MAX_EXPIRY_DAYS:
        raise BadRequest(f"expires_in_days must be a number greater than 0 and at most "
                         f"{MAX_EXPIRY_DAYS}")
    return start_ms + int(days * 86_400_000)


class KeyStore:
    def __init__(self, engine: sa.engine.Engine, *, environment: str = "live",
                 default_tier: str = "standard"):
        self.engine = engine
        self.environment = environment
        self.default_tier = default_tier

    def create(self, name, *, owner=None, scopes=DEFAULT_SCOPES, tier=None, rate_limit=None,
               expires_in_days=None, workspaces=None) -> tuple[ApiKey, str]:
        row, plaintext = self._new_row(name, owner=owner, scopes=scopes, tier=tier,
                                       rate_limit=rate_limit, expires_in_days=expires_in_days,
                                       workspaces=workspaces)
        with self.engine.begin() as conn:
            conn.execute(api_keys.insert().values(**row))
        return self.get(row["id"]), plaintext

    def _new_row(self, name, *, owner, scopes, tier, rate_limit, expires_in_days,
                 rotated_from=None, workspaces=None) -> tuple[dict, str]:
        """A validated row and the key's plaintext; nothing is written yet."""
        created = now_ms()
        name = _name(name)
        row = {
            "id": secrets.token_hex(8),
            "name": name,
            "owner": _name(owner, "owner") if owner is not None else name,
            "scopes": ",".join(_scopes(scopes)),
            "tier": _tier(tier if tier is not None else self.default_tier),
            "rate_limit": _rate_limit(rate_limit),
            "created_at": created,
            "expires_at": _expiry(expires_in_days, created),
            "revoked": False,
            "rotated_from": rotated_from,
            "workspaces": _workspaces(workspaces),
        }
        plaintext = keys.generate(self.environment)
        row.update(prefix=keys.display_prefix(plaintext), key_hash=keys.hash_key(plaintext))
        return row, plaintext

    def get(self, key_id: str) -> ApiKey:
        record = self.find_by_id(_key_id(key_id))
        if record is None:
            raise NotFound(f"API key not found: {key_id}")
        return record

    def list(self) -> list[ApiKey]:
        with self.engine.connect() as conn:
            rows = conn.execute(api_keys.select().order_by(api_keys.c.created_at)).all()
        return [ApiKey.from_row(row) for row in rows]

    def count(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(api_keys)).scalar_one()

    def find_by_hash(self, key_hash: str) -> ApiKey | None:
        with self.engine.connect() as conn:
            row = conn.execute(api_keys.select().where(api_keys.c.key_hash == key_hash)).first()
        # The index finds the row; the match itself is decided in constant time
        # (and exactly, whatever the database collation's idea of equality).
        if row is None or not hmac.compare_digest(row.key_hash, key_hash):
            return None
        return ApiKey.from_row(row)

    def find_by_id(self, key_id: str) -> ApiKey | None:
        if not _KEY_ID.fullmatch(key_id):
            return None
        with self.engine.connect() as conn:
            row = conn.execute(api_keys.select().where(api_keys.c.id == key_id)).first()
        return ApiKey.from_row(row) if row is not None else None

    def revoke(self, key_id: str) -> ApiKey:
        """Idempotent: revoking a revoked key changes nothing."""
        with self.engine.begin() as conn:
            conn.execute(api_keys.update()
                         .where(api_keys.c.id == _key_id(key_id), api_keys.c.revoked.is_(False))
                         .values(revoked=True, revoked_at=now_ms()))
        return self.get(key_id)

    def rotate(self, key_id: str, *, grace_period_hours=0) -> tuple[ApiKey, str]:
        """A new key with the same name, owner, scopes, tier and limit; the old one
        keeps working for the grace period, then expires (or is revoked at once).
        One transaction, and a key is rotated once: of two racing rotations, one
        gets a Conflict."""
        if isinstance(grace_period_hours, bool) \
                or not isinstance(grace_period_hours, (int, float)) \
                or not math.isfinite(grace_period_hours) or not 0 <= grace_period_hours <= 24 * 90:
            raise BadRequest("grace_period_hours must be a number from 0 to 2160")
        old = self.get(key_id)
        now = now_ms()
        if old.state(now) != "active" or old.rotated_to:
            state = "already rotated" if old.rotated_to else old.state(now)
            raise Conflict(f"API key {key_id} is {state} and cannot be rotated")
        remaining_days = None
        if old.expires_at is not None:
            remaining_days = max((old.expires_at - now) / 86_400_000, 1e-6)
        row, plaintext = self._new_row(old.name, owner=old.owner, scopes=old.scopes,
                                       tier=old.tier, rate_limit=old.rate_limit,
                                       expires_in_days=remaining_days, rotated_from=old.id,
                                       workspaces=old.workspaces)
        retire = {"rotated_to": row["id"]}
        if grace_period_hours == 0:
            retire.update(revoked=True, revoked_at=now)
        else:
            grace_end = now + int(grace_period_hours * 3_600_000)
            if old.expires_at is None or grace_end < old.expires_at:
                retire["expires_at"] = grace_end
        with self.engine.begin() as conn:
            claimed = conn.execute(api_keys.update()
                                   .where(api_keys.c.id == old.id, api_keys.c.rotated_to.is_(None),
                                          api_keys.c.revoked.is_(False))
                                   .values(**retire)).rowcount
            if claimed != 1:
                raise Conflict(f"API key {key_id} was rotated or revoked meanwhile")
            conn.execute(api_keys.insert().values(**row))
        return self.get(row["id"]), plaintext

    def touch(self, key_id: str, at_ms: int, interval_ms: int) -> None:
        """Record use, at most once per interval whatever the number of workers:
        the WHERE clause makes a second worker's write a no-op."""
        with self.engine.begin() as conn:
            conn.execute(api_keys.update()
                         .where(api_keys.c.id == key_id,
                                sa.or_(api_keys.c.last_used_at.is_(None),
                                       api_keys.c.last_used_at < at_ms - interval_ms))
                         .values(last_used_at=at_ms))
