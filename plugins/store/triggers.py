"""The registry index, kept by the database: triggers on MLflow's registry tables
write Hokusai's index (tables in mlflow_hokusai/db/schema.py) in the same
statement that changes MLflow's row.

Why triggers: the index costs no round trip of its own (written from Python,
it added half again to a PostgreSQL ``create_model_version``), it commits or
rolls back with MLflow's change, and writes that bypass Hokusai's store (a
plain ``mlflow server``, MLflow's job runner, a script) are indexed too.

The store still checks every Hokusai tag before MLflow writes (tags.py), for
clear messages; the triggers refuse only what needs the database to know: a
token bound to another model, a parent that is no earlier live version. A
refusal raises ``hokusai:<code>``, which refusals.py turns into an MLflow error.
Each trigger is written once, as statements over a dialect's fragments.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from mlflow.entities.model_registry.model_version_stages import STAGE_DELETED_INTERNAL

from mlflow_hokusai.plugins.store import tags
from mlflow_hokusai.plugins.store.dialects import DIALECTS

_logger = logging.getLogger(__name__)

VERSION = 7  # bump when a trigger changes: install() then replaces the older set
PREFIX = f"hokusai_v{VERSION}_"
V, T, M = "hokusai_model_versions", "hokusai_tokens", "hokusai_registered_models"
VO = "hokusai_version_owners"


@dataclasses.dataclass(frozen=True)
class Trigger:
    name: str
    table: str
    events: tuple[str, ...]
    when: str
    statements: Callable[[type], list[str]] | None  # (dialect) -> SQL statements
    # Run at commit, where the dialect can (PostgreSQL's constraint triggers).
    deferred: bool = False
    # Instead of ``statements``, for a tag table: per tag key, branches of
    # (condition or None, statements) for the ``row``'s key alone, the first whose
    # condition holds (a trigger per branch where the dialect can't branch).
    by_key: dict[str, list[tuple]] | None = None
    row: str = "NEW"


# -- helpers over a row (NEW or OLD) -------------------------------------------
def _version(row: str) -> str:
    return f"model_name = {row}.name AND version = {row}.version"


def _live(row: str) -> str:
    return f"EXISTS (SELECT 1 FROM {V} WHERE {_version(row)})"


def _previous(row: str) -> str:
    return (f"(SELECT max(p.version) FROM {V} p "
            f"WHERE p.model_name = {row}.name AND p.version < {row}.version)")


def _release_tokens(name: str) -> str:
    """Unbind the model's token when no live version carries it any more (a walk
    over the model's versions: rare, and it spares every version an index)."""
    return (f"DELETE FROM {T} WHERE model_name = {name} AND NOT EXISTS "
            f"(SELECT 1 FROM {V} v WHERE v.model_name = {T}.model_name "
            f"AND v.token_key = {T}.token_key)")


# -- how the index reads a tag's value ---------------------------------------------
@dataclasses.dataclass(frozen=True)
class Reading:
    # (a dialect class of dialects.py, raw value) -> condition
    valid: Callable[[Any, str], str]
    # (a dialect class of dialects.py, valid raw value) -> the indexed value
    value: Callable[[Any, str], str]


_READINGS = {
    tags.TOKEN_ID: Reading(lambda d, v: d.is_token(v), lambda d, v: v),
    tags.BENCHMARK_METRIC: Reading(lambda d, v: f"trim({v}) <> ''", lambda d, v: v),
    tags.BENCHMARK_VALUE: Reading(lambda d, v: d.is_number(v),
                                  lambda d, v: f"CAST({v} AS {d.real})"),
    tags.BENCHMARK_DIRECTION: Reading(lambda d, v: f"lower(trim({v})) IN ('higher', 'lower')",
                                      lambda d, v: f"lower(trim({v}))"),
    tags.CONTRIBUTOR: Reading(lambda d, v: d.is_address(v), lambda d, v: f"lower({v})"),
    tags.PARENT_VERSION: Reading(lambda d, v: d.is_integer(v),
                                 lambda d, v: f"CAST({v} AS INTEGER)"),
}


def _read(d, key: str, v: str) -> str:
    """A tag's indexed value, or NULL when it is not valid."""
    reading = _READINGS[key]
    return f"CASE WHEN {reading.valid(d, v)} THEN {reading.value(d, v)} END"


# -- tag bodies: (dialect, row, value) -> statements, ``value`` being the indexed
# value (read from a valid tag) or NULL (an invalid or deleted one).
def _metric(d, row, value):
    return [f"UPDATE {V} SET benchmark_metric = {value} WHERE {_version(row)}"]


def _value(d, row, value):
    return [f"UPDATE {V} SET benchmark_value = {value} WHERE {_version(row)}"]


def _version_direction(d, row, value):
    return [f"UPDATE {V} SET benchmark_direction = {value} WHERE {_version(row)}"]


def _contributor(d, row, value):
    # Credited at the version's creation: a time MLflow's rows keep, so that a
    # rebuild reads the same (no tag records when it was set).
    return [f"UPDATE {V} SET contributor = {value}, contributed_at = CASE "
            f"WHEN {value} IS NULL THEN NULL ELSE created_at END WHERE {_version(row)}"]


def _parent_check(d, row, parent):
    return [d.refuse("parent_version", f"{parent} IS NOT NULL AND {_live(row)} AND NOT EXISTS "
                     f"(SELECT 1 FROM {V} q WHERE q.model_name = {row}.name "
                     f"AND q.version = {parent} AND q.version < {row}.version)")]


def _parent(d, row, parent):
    return [*_parent_check(d, row, parent),
            f"UPDATE {V} SET parent_version = COALESCE({parent}, {_previous(row)}), "
            f"parent_explicit = ({parent} IS NOT NULL) WHERE {_version(row)}"]


def _bad_parent(d, row):
    return [d.refuse("parent_version", _live(row))]


def _bound_here(row: str, token: str) -> str:
    return (f"EXISTS (SELECT 1 FROM {T} t WHERE t.token_key = lower({token}) "
            f"AND t.model_name = {row}.name)")


def _lock_model(d, name: str) -> list[str]:
    """Serialize the token writes of one model until commit (a row lock on its
    index row, where the dialect has them; SQLite serializes every writer).
    Without it, on PostgreSQL, one version dropping the model's token while
    another version sets it could each miss the other's uncommitted change and
    release a token a version still holds. Taken before the statements that
    read the model's other versions, which then see what the holder committed."""
    return d.lock(M, f"name = {name}")


def _token_binding(d, row, token):
    """Bind the version's token (``token``: a valid one, or NULL) to its model, or
    refuse. Nothing here changes anything when the token is already bound to this
    model (the usual case): callers skip it then, where the dialect can branch."""
    key = f"lower({token})"
    return [
        # A model carries one token: another may replace it only when no other
        # live version of the model carries it.
        d.refuse("model_token", f"EXISTS (SELECT 1 FROM {T} t WHERE t.model_name = "
                 f"{row}.name AND t.token_key <> {key} AND EXISTS (SELECT 1 FROM {V} o "
                 f"WHERE o.model_name = {row}.name AND o.token_key = t.token_key "
                 f"AND o.version <> {row}.version))"),
        _release_tokens(f"{row}.name"),
        # The baseline is not stored: it is read from the model's versions
        # (reader.token), so it follows them and a rebuild finds the same.
        d.insert_ignoring_conflicts(
            T, "token_key, token_id, model_name, bound_at",
            f"SELECT {key}, {token}, {row}.name, {d.now_ms} "
            f"FROM {V} WHERE {_version(row)} AND {token} IS NOT NULL"),
        # Bound here now, or it is another model's (perhaps bound a moment ago by a
        # concurrent writer, whose row the insert above then left alone).
        d.refuse("token_bound",
                 f"{token} IS NOT NULL AND {_live(row)} AND NOT {_bound_here(row, token)}"),
    ]


def _token(d, row, token):
    return [f"UPDATE {V} SET token_id = {token}, token_key = lower({token}) "
            f"WHERE {_version(row)}",
            *_lock_model(d, f"{row}.name"),
            *d.only_if(f"NOT {_bound_here(row, token)}", _token_binding(d, row, token))]


_VERSION_TAGS = {tags.BENCHMARK_METRIC: _metric, tags.BENCHMARK_VALUE: _value,
                 tags.BENCHMARK_DIRECTION: _version_direction, tags.CONTRIBUTOR: _contributor,
                 tags.PARENT_VERSION: _parent, tags.TOKEN_ID: _token}
# An invalid value reads as none, but for a parent: that is refused.
_INVALID = {tags.PARENT_VERSION: _bad_parent}
_NULL = "NULL"


def _of_live_version(body):
    """A version tag's body, skipped (where the dialect can) while the version has
    no index row: on PostgreSQL, until the commit that creates the version."""
    return lambda d, row, value: d.only_if(_live(row), body(d, row, value))


def _tag_triggers(table: str, short: str, bodies: dict, wrap=lambda body: body) -> list[Trigger]:
    """A set and a delete trigger over the keys of ``bodies``. A set runs the
    key's body on the indexed value when the tag is valid, else on NULL (or the
    key's ``_INVALID`` body); a delete runs it on NULL. Each check of validity is
    then made once, in a condition, rather than in every statement."""
    def set_branches(key, body):
        reading = _READINGS[key]
        invalid = _INVALID.get(key, lambda d, row: wrap(body)(d, row, _NULL))
        return [(lambda d: reading.valid(d, "NEW.value"),
                 lambda d: wrap(body)(d, "NEW", reading.value(d, "NEW.value"))),
                (lambda d: f"({reading.valid(d, 'NEW.value')}) IS NOT TRUE",
                 lambda d: invalid(d, "NEW"))]

    return [Trigger(f"{PREFIX}{short}_set", table, ("INSERT", "UPDATE OF value"), "", None,
                    by_key={key: set_branches(key, body) for key, body in bodies.items()}),
            Trigger(f"{PREFIX}{short}_unset", table, ("DELETE",), "", None, row="OLD",
                    by_key={key: [(None, functools.partial(wrap(body), row="OLD", value=_NULL))]
                            for key, body in bodies.items()})]


# -- model versions -------------------------------------------------------------
def _tag_of(key: str) -> str:
    return (f"(SELECT value FROM model_version_tags WHERE workspace = NEW.workspace "
            f"AND name = NEW.name AND version = NEW.version AND key = '{key}')")


def _version_created(d):
    """The version's whole index row, from its tags as they are when this runs: at
    commit on PostgreSQL (deferred), so one INSERT instead of one UPDATE per tag;
    before MLflow inserts the tags on SQLite, whose tag triggers then fill it in."""
    column = {key: f"t.{key}" for key in _VERSION_TAGS}
    pivot = ", ".join(f"max(CASE WHEN key = '{key}' THEN value END) AS {key}"
                      for key in _VERSION_TAGS)
    def read(key):
        return _read(d, key, column[key])

    token, parent, address = read(tags.TOKEN_ID), read(tags.PARENT_VERSION), \
        read(tags.CONTRIBUTOR)
    parent_tag = _tag_of(tags.PARENT_VERSION)
    indexed_token = f"(SELECT token_id FROM {V} WHERE {_version('NEW')})"
    return [
        f"INSERT INTO {V} (model_name, version, created_at, run_id, "
        f"parent_version, parent_explicit, token_id, token_key, benchmark_metric, "
        f"benchmark_value, benchmark_direction, contributor, contributed_at) "
        f"SELECT NEW.name, NEW.version, NEW.creation_time, "
        f"NEW.run_id, COALESCE({parent}, {_previous('NEW')}), ({parent} IS NOT NULL), "
        f"{token}, lower({token}), {read(tags.BENCHMARK_METRIC)}, "
        f"{read(tags.BENCHMARK_VALUE)}, {read(tags.BENCHMARK_DIRECTION)}, {address}, "
        f"CASE WHEN {address} IS NOT NULL THEN NEW.creation_time END "
        f"FROM (SELECT {pivot} FROM model_version_tags WHERE workspace = NEW.workspace "
        f"AND name = NEW.name AND version = NEW.version) t "
        # Deferred, it runs at commit: the transaction may have deleted the version.
        f"WHERE EXISTS (SELECT 1 FROM model_versions WHERE workspace = NEW.workspace "
        f"AND name = NEW.name AND version = NEW.version "
        f"AND current_stage <> '{STAGE_DELETED_INTERNAL}')",
        *d.only_if(f"{indexed_token} IS NOT NULL", _lock_model(d, "NEW.name")),
        # Each check costs a query: one condition tells whether any is needed.
        *d.only_if(f"{parent_tag} IS NOT NULL OR ({indexed_token} IS NOT NULL "
                   f"AND NOT {_bound_here('NEW', indexed_token)})", [
            # A parent tag the INSERT could not read checks as version 0: refused.
            *_parent_check(d, "NEW", f"CASE WHEN {parent_tag} IS NOT NULL THEN COALESCE("
                                     f"(SELECT parent_version FROM {V} WHERE {_version('NEW')} "
                                     f"AND parent_explicit), 0) END"),
            *_token_binding(d, "NEW", indexed_token)]),
    ]


def _version_owner(d):
    """Who created the version: MLflow's own user_id (the principal's plain name
    under Hokusai, what the writer set otherwise), at once rather than at commit,
    so that the store can add the principal's key id in the same transaction
    (owners.py). Only Hokusai's table is written: MLflow's row is left as is."""
    where = "workspace = NEW.workspace AND name = NEW.name AND version = NEW.version"
    return [f"DELETE FROM {VO} WHERE {where}",  # a model of the name deleted outside
            f"INSERT INTO {VO} (workspace, name, version, owner, created_at) "
            f"VALUES (NEW.workspace, NEW.name, NEW.version, NEW.user_id, NEW.creation_time)"]


def _version_deleted(d):
    # MLflow keeps a deleted version's row (and its tags), marked with a stage of
    # its own. A child named the deleted version as its parent: it now descends
    # from that version's parent; a child without the tag follows the previous
    # live version, as it would if created now (backfill.py reads the same).
    return [
        *_lock_model(d, "NEW.name"),
        f"UPDATE {V} SET parent_version = (SELECT gone.parent_version FROM {V} gone "
        f"WHERE gone.model_name = NEW.name AND gone.version = NEW.version) "
        f"WHERE model_name = NEW.name AND parent_version = NEW.version AND parent_explicit",
        f"DELETE FROM {V} WHERE {_version('NEW')}",
        f"UPDATE {V} SET parent_version = (SELECT max(p.version) FROM {V} p "
        f"WHERE p.model_name = {V}.model_name AND p.version < {V}.version) "
        f"WHERE model_name = NEW.name AND parent_version = NEW.version",
        _release_tokens("NEW.name"),
    ]


# -- registered models ------------------------------------------------------------
def _name_taken(d, row: str) -> str:
    """The index is keyed by model name alone, so a name is one workspace's: a
    second workspace's model of it would share the first one's versions, token
    and lineage (its first version failed to index, a 500)."""
    return d.refuse("model_name_taken", f"EXISTS (SELECT 1 FROM registered_models o "
                    f"WHERE o.name = {row}.name AND o.workspace <> {row}.workspace)")


def _model_created(d):
    # The insert first: on PostgreSQL it waits for a concurrent creator of the
    # name to commit, whose model the check then sees.
    return [d.insert_ignoring_conflicts(M, "name, created_at",
                                        "SELECT NEW.name, NEW.creation_time"),
            _name_taken(d, "NEW")]


_OF_MODEL = "workspace = OLD.workspace AND name = OLD.name"  # a version owner's model


def _model_renamed(d):
    return [_name_taken(d, "NEW"),
            *(f"UPDATE {table} SET {column} = NEW.name WHERE {column} = OLD.name"
              for table, column in ((V, "model_name"), (T, "model_name"), (M, "name"))),
            f"UPDATE {VO} SET name = NEW.name WHERE {_OF_MODEL}"]


def _model_deleted(d):
    return [*(f"DELETE FROM {table} WHERE {column} = OLD.name"
              for table, column in ((V, "model_name"), (T, "model_name"), (M, "name"))),
            f"DELETE FROM {VO} WHERE {_OF_MODEL}"]


def _model_direction(d, row, value):
    return [f"UPDATE {M} SET benchmark_direction = {value} WHERE name = {row}.name"]


TRIGGERS: list[Trigger] = [
    Trigger(f"{PREFIX}model_created", "registered_models", ("INSERT",), "", _model_created),
    Trigger(f"{PREFIX}model_renamed", "registered_models", ("UPDATE OF name",),
            "OLD.name <> NEW.name", _model_renamed),
    Trigger(f"{PREFIX}model_deleted", "registered_models", ("DELETE",), "", _model_deleted),
    *_tag_triggers("registered_model_tags", "model_tag",
                   {tags.BENCHMARK_DIRECTION: _model_direction}),
    Trigger(f"{PREFIX}version_created", "model_versions", ("INSERT",), "", _version_created,
            deferred=True),
    Trigger(f"{PREFIX}version_owner", "model_versions", ("INSERT",), "", _version_owner),
    Trigger(f"{PREFIX}version_deleted", "model_versions", ("UPDATE OF current_stage",),
            f"NEW.current_stage = '{STAGE_DELETED_INTERNAL}' "
            f"AND COALESCE(OLD.current_stage, '') <> '{STAGE_DELETED_INTERNAL}'",
            _version_deleted),
    *_tag_triggers("model_version_tags", "version_tag", _VERSION_TAGS, wrap=_of_live_version),
]


def supported(engine) -> bool:
    return engine.dialect.name in DIALECTS


def _versions(names: set[str]) -> set[int]:
    return {int(match.group(1)) for name in names
            if (match := re.match(r"hokusai_v(\d+)_", name))}


def _up_to_date(connection, existing: set[str]) -> bool:
    """This version's set (or a newer one) is in, or there are no MLflow registry
    tables to put it on."""
    return not sa.inspect(connection).has_table("model_version_tags") \
        or max(_versions(existing), default=0) >= VERSION


def current(engine) -> bool:
    with engine.connect() as connection:
        return _up_to_date(connection, DIALECTS[engine.dialect.name].existing_names(connection))


def install(engine) -> bool:
    """Create the triggers, or replace an older set; returns True if it changed
    anything. The caller holds the migration lock (``migrate.locked``). A newer set,
    from a newer Hokusai sharing the database, is left alone."""
    dialect = DIALECTS[engine.dialect.name]
    with engine.begin() as connection:
        existing = dialect.existing_names(connection)
        if _up_to_date(connection, existing):
            return False
        dialect.drop(connection, existing)
        for trigger in TRIGGERS:
            dialect.create(connection, trigger)
    _logger.info("Registry index triggers installed (version %d)", VERSION)
    return True
