"""The ``hokusai`` command: key management and database upgrades.

Import-light on purpose (no mlflow import): it runs in scripts and CI jobs.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import click

from mlflow_hokusai import key_refs
from mlflow_hokusai.cli_contributors import contributors, ledger_group
from mlflow_hokusai.cli_errors import Group, check_sqlite_path, database_engine
from mlflow_hokusai.cli_permissions import permissions
from mlflow_hokusai.db import migrate
from mlflow_hokusai.db.engine import PLUGIN_PREFIX, resolve_database_uri
from mlflow_hokusai.plugins.auth import scopes
from mlflow_hokusai.plugins.auth.keystore import KeyStore
from mlflow_hokusai.settings import TIERS, get_settings

database_option = click.option(
    "--database-uri", default=None, metavar="URI",
    help="SQLAlchemy URI of the Hokusai database (default: $HOKUSAI_DATABASE_URI).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def engine_for(database_uri: str | None, *, must_exist: bool = True):
    """``must_exist`` for commands that only read or change what is there: they
    refuse a SQLite path with no database rather than make an empty one."""
    url = resolve_database_uri(database_uri)
    check_sqlite_path(url, must_exist=must_exist)
    engine = database_engine(url)
    migrate.upgrade(engine)
    return engine


def open_keystore(database_uri: str | None, *, must_exist: bool = True) -> KeyStore:
    settings = get_settings()
    engine = engine_for(database_uri, must_exist=must_exist)
    return KeyStore(engine, environment=settings.key_environment,
                    default_tier=settings.default_tier)


def _print_new_key(key, plaintext: str, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({**key.to_dict(), "key": plaintext}))
        return
    click.echo(f"Created API key {key.id} ({key.name}, scopes: {','.join(key.scopes)}, "
               f"tier: {key.tier}, expires: {key.to_dict()['expires_at'] or 'never'})")
    click.echo("Store it now; it is not shown again:")
    click.echo(plaintext)


@click.group(cls=Group)
def main():
    """Manage a Hokusai MLflow server's API keys, permissions and database."""


main.add_command(permissions)
main.add_command(contributors)
main.add_command(ledger_group(database_option))


@main.command("serve")
@click.option("--data", type=click.Path(file_okay=False, path_type=Path), default="hokusai-data",
              show_default=True, help="Directory of the SQLite database, artifacts, log and spool.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=5000, show_default=True)
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True)
def serve_command(data, host, port, workers):
    """Run a server on embedded defaults and print the first admin key once."""
    from mlflow_hokusai import serve  # psutil and the server's start: this command only

    sys.exit(serve.run(data, host, port, workers))


@main.group(cls=Group)
def db():
    """Database schema."""


@db.command("upgrade")
@database_option
def db_upgrade(database_uri):
    """Create or upgrade Hokusai's tables; with a hokusai+ URI, MLflow's too."""
    url = resolve_database_uri(database_uri)
    check_sqlite_path(url, must_exist=False)
    if (database_uri or get_settings().database_uri or "").startswith(PLUGIN_PREFIX):
        from mlflow_hokusai.db.mlflow_schema import upgrade_mlflow_schema

        upgrade_mlflow_schema(url)
        click.echo("MLflow schema upgraded")
    engine = database_engine(url)
    changed = migrate.upgrade(engine)
    click.echo(f"Hokusai schema {'upgraded to' if changed else 'already at'} "
               f"{migrate.head_revision()}")
    if _holds_mlflow_registry(engine):
        from mlflow_hokusai.plugins.store import backfill

        backfill.prepare(engine)  # indexes an existing MLflow database once


def _holds_mlflow_registry(engine) -> bool:
    import sqlalchemy

    return "model_versions" in sqlalchemy.inspect(engine).get_table_names()


@db.command("reindex")
@database_option
def db_reindex(database_uri):
    """Rebuild the registry index from MLflow's tables (after plain MLflow wrote to them)."""
    engine = engine_for(database_uri, must_exist=True)
    if not _holds_mlflow_registry(engine):
        raise click.ClickException("No MLflow model registry tables in this database")
    from sqlalchemy.orm import Session

    from mlflow_hokusai.plugins.store import backfill, triggers

    if not triggers.supported(engine):
        raise click.ClickException("The registry index needs PostgreSQL or SQLite")
    with migrate.locked(engine):
        triggers.install(engine)  # they keep the index in step from here on
        with Session(engine) as session:
            count = backfill.rebuild(session)
            session.commit()
    click.echo(f"Registry index rebuilt: {count} model versions")


@main.group(cls=Group)
def keys():
    """API keys."""


@keys.command("create")
@click.option("--name", required=True, help="What the key is for.")
@click.option("--owner", default=None, help="Principal recorded for its requests (default: name).")
@click.option("--scopes", "scope_list", default="read,write", show_default=True,
              help=f"Comma-separated, of {', '.join(scopes.ALL)}.")
@click.option("--tier", type=click.Choice(TIERS), default=None,
              help="Rate-limit tier (default: $HOKUSAI_DEFAULT_TIER).")
@click.option("--rate-limit", default=None, metavar="LIMIT",
              help="Own limit overriding the tier's, e.g. '500/minute'.")
@click.option("--expires-in", "expires_in", type=float, default=None, metavar="DAYS",
              help="Expire after this many days (fractions allowed).")
@click.option("--workspaces", default=None, metavar="NAMES",
              help="MLflow workspaces the key may enter (comma-separated, or '*' for all).")
@database_option
@json_option
def keys_create(name, owner, scope_list, tier, rate_limit, expires_in, workspaces, database_uri,
                as_json):
    """Create a key and print it once."""
    key, plaintext = open_keystore(database_uri, must_exist=False).create(
        name, owner=owner, scopes=scope_list, tier=tier, rate_limit=rate_limit,
        expires_in_days=expires_in, workspaces=workspaces)
    _print_new_key(key, plaintext, as_json)


@keys.command("bootstrap")
@database_option
@json_option
def keys_bootstrap(database_uri, as_json):
    """Create a first admin key if no key exists yet."""
    store = open_keystore(database_uri, must_exist=False)
    if store.count():
        click.echo("API keys already exist; none created.", err=True)
        return
    key, plaintext = store.create("admin", scopes=scopes.BOOTSTRAP)
    _print_new_key(key, plaintext, as_json)


@keys.command("list")
@database_option
@json_option
def keys_list(database_uri, as_json):
    """List keys (never their secret)."""
    rows = [key.to_dict() for key in open_keystore(database_uri).list()]
    if as_json:
        click.echo(json.dumps(rows))
        return
    columns = ("id", "name", "owner", "prefix", "scopes", "tier", "state", "expires_at",
               "last_used_at")
    table = [columns] + [tuple(str(",".join(r[c]) if c == "scopes" else r[c] or "-")
                               for c in columns) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(columns))]
    for row in table:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=False))
        click.echo("  ".join(cells).rstrip())


key_argument = click.argument("key", metavar="KEY")


@keys.command("revoke")
@key_argument
@database_option
def keys_revoke(key, database_uri):
    """Revoke a key (its id, the prefix `keys list` shows, or the key itself);
    every worker refuses it within a second."""
    store = open_keystore(database_uri)
    revoked = store.revoke(key_refs.resolve(store, key))
    click.echo(f"Revoked API key {revoked.id} ({revoked.prefix})")


@keys.command("rotate")
@key_argument
@click.option("--grace-period", type=float, default=0, show_default=True, metavar="HOURS",
              help="How long the old key keeps working (0: revoked at once).")
@database_option
@json_option
def keys_rotate(key, grace_period, database_uri, as_json):
    """Replace a key (its id, the prefix `keys list` shows, or the key itself)
    with a new one of the same name, owner, scopes and limits."""
    store = open_keystore(database_uri)
    new, plaintext = store.rotate(key_refs.resolve(store, key), grace_period_hours=grace_period)
    _print_new_key(new, plaintext, as_json)
    assert new.rotated_from is not None  # a rotated key names its predecessor
    click.echo(key_refs.old_key_fate(store.get(new.rotated_from)), err=as_json)


@main.group(cls=Group)
def artifacts():
    """Content-addressed artifact stores (hokusai+file://, hokusai+s3://)."""


def _hokusai_uri(ctx, param, value: str) -> str:
    if not value.startswith(PLUGIN_PREFIX):
        # One line, as every other mistake (a BadParameter prints the usage too).
        raise click.ClickException("--artifact-uri must be a Hokusai store (hokusai+file:///dir "
                                   f"or hokusai+s3://bucket/prefix), not {value.split(':', 1)[0]}:")
    return value


artifact_uri_option = click.option(
    "--artifact-uri", required=True, metavar="URI", callback=_hokusai_uri,
    help="hokusai+file:///dir or hokusai+s3://bucket/prefix (a URI below a store root "
         "means that root).")


@contextlib.contextmanager
def _artifact_errors():
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as error:
        raise click.ClickException(error.message) from None
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    except NoCredentialsError:
        raise click.ClickException(
            "No S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "(or AWS_PROFILE)") from None
    except (BotoCoreError, ClientError) as error:
        raise click.ClickException(f"S3 refused: {error}") from None


@artifacts.command("gc")
@artifact_uri_option
@click.option("--grace-seconds", type=float, default=None, metavar="SECONDS",
              help="Keep blobs written or referenced this recently "
                   "(default: $HOKUSAI_ARTIFACTS_GC_GRACE_SECONDS).")
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
@json_option
def artifacts_gc(artifact_uri, grace_seconds, dry_run, as_json):
    """Delete blobs that no artifact path refers to any more."""
    from mlflow_hokusai.plugins.artifacts import gc

    grace = get_settings().artifacts_gc_grace_seconds if grace_seconds is None else grace_seconds
    with _artifact_errors():
        report = gc.collect(artifact_uri, grace, dry_run=dry_run)
    if as_json:
        click.echo(json.dumps(report.to_dict()))
        return
    verb = "would delete" if dry_run else "deleted"
    click.echo(f"{report.root}: {report.mappings} paths refer to {report.referenced} of "
               f"{report.blobs} blobs; {verb} {report.deleted}, kept {report.young_kept} "
               f"younger than {grace:g} s; {report.temp_removed} stale temp objects removed; "
               f"{report.stored_bytes} bytes stored")


@artifacts.command("init")
@artifact_uri_option
def artifacts_init(artifact_uri):
    """Make a URI a store root, so that the URIs below it share its blobs (needed once
    when clients write to it directly, before any upload through the server)."""
    from mlflow_hokusai.plugins.artifacts import gc

    with _artifact_errors():
        click.echo(f"Store root: {gc.init(artifact_uri)}")


if __name__ == "__main__":
    sys.exit(main())
