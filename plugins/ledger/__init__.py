"""The contribution ledger: every ``contribution_recorded`` event (signals.py)
appended to a hash chain in Hokusai's database (chain.py), paged out by
``GET /api/ledger`` (admin) and checked by ``hokusai ledger verify``."""

from __future__ import annotations

import logging

import sqlalchemy as sa

from mlflow_hokusai import signals
from mlflow_hokusai.plugins.auth.scopes import ADMIN

_logger = logging.getLogger(__name__)


class Recorder:
    """The receiver of one app's events (connected with ``Hokusai.connect``,
    which leaves out another app's)."""

    def __init__(self, hokusai):
        self.hokusai = hokusai

    def __call__(self, sender, **event):
        try:
            self.hokusai.ledger.append(
                event["event"], token_id=event.get("token_id"),
                model_name=event.get("model_name"), version=event.get("version"),
                principal=event.get("principal"), data=event.get("data"))
        except (sa.exc.SQLAlchemyError, ValueError, TypeError):
            # The change it records is already committed: a gap is logged loudly.
            _logger.exception("Ledger: could not append %s event for %s", event.get("event"),
                              event.get("token_id") or event.get("principal"))


def init_app(flask_app, hokusai) -> None:
    from mlflow_hokusai.plugins.ledger import api
    from mlflow_hokusai.plugins.ledger.chain import Ledger

    hokusai.ledger = Ledger(hokusai.engine)
    hokusai.connect(signals.contribution_recorded, Recorder(hokusai))
    hokusai.routes.add_rule({"GET", "HEAD"}, r"/api/ledger", ADMIN)
    flask_app.register_blueprint(api.blueprint)
