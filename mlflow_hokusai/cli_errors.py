"""How the ``hokusai`` command reports a user's mistake: one line on stderr and a
non-zero exit, in the command's own words (its flags, not the REST API's fields),
never a traceback. Import-light like the command itself."""

from __future__ import annotations

import os
import re

import click
import sqlalchemy

from mlflow_hokusai.errors import HokusaiError

# The key store validates for the REST API and the CLI alike and names the
# JSON field; a person at a shell typed a flag.
FLAGS = {
    "name": "--name", "owner": "--owner", "scopes": "--scopes", "tier": "--tier",
    "rate_limit": "--rate-limit", "expires_in_days": "--expires-in (days)",
    "workspaces": "--workspaces", "grace_period_hours": "--grace-period (hours)",
}
_LEADING_FIELD = re.compile(r"^(\w+)(?=[ :])")


def in_cli_words(message: str) -> str:
    return _LEADING_FIELD.sub(lambda m: FLAGS.get(m.group(1), m.group(1)), message, count=1)


def _first_line(text: object) -> str:
    return next((line.strip() for line in str(text).splitlines() if line.strip()), "")


class Group(click.Group):
    """A command group whose commands' expected failures end as one line."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except HokusaiError as error:
            detail = error.detail if isinstance(error.detail, str) else error.default_detail
            raise click.ClickException(in_cli_words(_first_line(detail))) from None
        except sqlalchemy.exc.ArgumentError as error:
            raise click.ClickException(f"--database-uri: {_first_line(error)}") from None
        except sqlalchemy.exc.DBAPIError as error:
            # The driver's first line names the host and what failed, never the
            # SQL statement (that comes after it).
            raise click.ClickException(
                f"Cannot use the database: {_first_line(error.orig or error)}") from None


def database_engine(url: str):
    """The engine, or one line if the URI names a driver that is not installed."""
    from mlflow_hokusai.db.engine import get_engine
    from mlflow_hokusai.settings import get_settings

    try:
        return get_engine(url, get_settings().db_timeout_seconds)
    except ModuleNotFoundError as error:
        raise click.ClickException(
            f"--database-uri needs the Python module {error.name!r}; install it") from None


def check_sqlite_path(url: str, *, must_exist: bool) -> None:
    """SQLite makes any path it is given into a new, empty database: a mistyped
    ``--database-uri`` would list no keys and revoke nothing, silently."""
    parsed = sqlalchemy.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:") \
            or parsed.query.get("mode") == "memory" or parsed.database.startswith("file:"):
        return
    path = os.path.abspath(parsed.database)
    if not os.path.isdir(os.path.dirname(path)):
        raise click.ClickException(
            f"No directory {os.path.dirname(path)} for the SQLite database {path} "
            "(a mistyped --database-uri?)")
    if must_exist and not os.path.isfile(path):
        raise click.ClickException(
            f"No SQLite database at {path} (a mistyped --database-uri? "
            "`hokusai keys create` or `hokusai db upgrade` makes a new one)")
