"""What a person at a shell may use to name an API key, and how the CLI tells
them what became of a rotated one."""

from __future__ import annotations

import datetime
import re

from mlflow_hokusai.errors import NotFound
from mlflow_hokusai.plugins.auth import keys
from mlflow_hokusai.plugins.auth.keystore import ApiKey, KeyStore, now_ms

_FULL_ID = re.compile(r"[0-9a-f]{16}")
_ID_START = re.compile(r"[0-9a-f]{4,15}")


def resolve(store: KeyStore, ref: str) -> str:
    """The id of the one key ``ref`` names: its id, the start of its id (four
    hex digits or more), the prefix ``keys list`` shows, or the key itself."""
    if _FULL_ID.fullmatch(ref):
        return ref
    if keys.is_well_formed(ref):
        found = store.find_by_hash(keys.hash_key(ref))
        if found is None:
            raise NotFound("API key not found: no key in this database is that key")
        return found.id
    if keys.looks_like_key(ref):
        matches = [key for key in store.list() if key.prefix == ref]
    elif _ID_START.fullmatch(ref):
        matches = [key for key in store.list() if key.id.startswith(ref)]
    else:
        raise NotFound(f"API key not found: {ref[:40]!r} is neither a key id nor a key prefix")
    if not matches:
        raise NotFound(f"API key not found: {ref}")
    if len(matches) > 1:
        ids = ", ".join(f"{key.id} ({key.state(now_ms())})" for key in matches)
        raise NotFound(f"{ref} matches {len(matches)} keys: {ids}; give the id")
    return matches[0].id


def _utc(ms: int) -> str:
    moment = datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def old_key_fate(old: ApiKey) -> str:
    if old.revoked:
        return f"The old key {old.id} ({old.prefix}) is revoked: it stopped working now."
    until = _utc(old.expires_at) if old.expires_at is not None else "it expires"
    return f"The old key {old.id} ({old.prefix}) keeps working until {until}, then expires."
