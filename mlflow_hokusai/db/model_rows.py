"""Rows Hokusai keeps under a registered model's name follow the model: a
renamed model's rows move to its new name, a deleted model's rows go with it.
A later model of that name (another principal's, perhaps in another workspace)
must start with none of them: they hold the earlier model's prediction inputs,
deployments and drift reports."""

from __future__ import annotations

import logging

import sqlalchemy as sa

_logger = logging.getLogger(__name__)


def follow(engine: sa.engine.Engine, tables, name: str | None, new_name: str | None) -> None:
    """Move the rows of ``tables`` (each with a ``model_name`` column) from
    ``name`` to ``new_name``, or delete them when there is no new name; one
    transaction for all. A rename to the same name (MLflow answers it 200)
    moves nothing."""
    if not name or name == new_name:
        return
    with engine.begin() as connection:
        for table in tables:
            column = table.c.model_name
            if new_name:
                # Rows already under the new name can only be left over from a model
                # deleted before its rows followed it: stale, and in the way of a
                # one-row-per-model key (drift checks).
                connection.execute(sa.delete(table).where(column == new_name))
                connection.execute(sa.update(table).where(column == name)
                                   .values(model_name=new_name))
            else:
                connection.execute(sa.delete(table).where(column == name))


def follower(*tables: sa.Table):
    """A receiver of ``signals.model_changed`` (sent by the app's ``Hokusai``
    object) that makes the rows of ``tables`` follow the model."""

    def follow_model(sender, name: str, new_name: str | None) -> None:
        # MLflow's change is committed by now: a failure here must neither answer
        # it 500 nor keep the other plugins' rows from following.
        try:
            follow(sender.engine, tables, name, new_name)
        except Exception:
            _logger.exception("Rows of %s did not follow model %r (to %r)",
                              ", ".join(table.name for table in tables), name, new_name)

    return follow_model
