"""Proven contributor addresses: principals link Ethereum addresses by signing
a server-issued SIWE challenge, and a ``hokusai_contributor`` tag is accepted
only from a principal holding a link to the address, or an admin (proof.py)."""

from __future__ import annotations

from mlflow_hokusai.plugins.auth.scopes import ADMIN


def init_app(flask_app, hokusai) -> None:
    from mlflow_hokusai import signals
    from mlflow_hokusai.db import model_rows
    from mlflow_hokusai.db.schema import contributor_claims
    from mlflow_hokusai.plugins.contributors import api, proof
    from mlflow_hokusai.plugins.contributors.links import Links

    settings = hokusai.settings
    hokusai.contributor_links = Links(hokusai.engine, settings.public_url,
                                      settings.contributor_challenge_minutes)
    proof.configure(hokusai.contributor_links, settings.require_proven_contributors)
    hokusai.connect(signals.model_changed, model_rows.follower(hokusai, contributor_claims))
    hokusai.routes.add_rule({"DELETE"}, r"/api/contributors/links/.*", ADMIN)
    flask_app.register_blueprint(api.blueprint)
