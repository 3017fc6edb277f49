"""Who may credit a model version to an address: the rule every write of a
``hokusai_contributor`` tag passes (the registry store calls ``check`` before
MLflow writes, so it holds on MLflow's routes and Hokusai's alike), and the
record of who set it with what proof (``hokusai_contributor_claims``), from
which impact and lineage answer ``address_verified``.

Outside a server request (a client writing through a ``hokusai+`` URI, which
holds the database's own credentials) there is no principal to judge and
nothing is recorded: such addresses read as unverified.
"""

from __future__ import annotations

import logging
import time

import sqlalchemy as sa
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import PERMISSION_DENIED

from mlflow_hokusai.db.schema import contributor_claims as CL
from mlflow_hokusai.pipeline import current_principal
from mlflow_hokusai.plugins.auth.scopes import ADMIN

_logger = logging.getLogger(__name__)
RULE = "HOKUSAI_REQUIRE_PROVEN_CONTRIBUTORS"
VERIFIED = ("link", "admin")


class _Config:
    links = None  # plugins.contributors.links.Links, set by the server
    required = True


_config = _Config()


def configure(links, required: bool) -> None:
    _config.links, _config.required = links, required


def check(address: str) -> str | None:
    """The proof the caller holds for ``address`` ("link", "admin", "none"), or
    None outside a request; raises PERMISSION_DENIED when the rule refuses."""
    principal = current_principal()
    if principal is None or _config.links is None:
        return None
    if ADMIN in principal.scopes:
        return "admin"
    if _config.links.holds(principal.username, address):
        return "link"
    if _config.required:
        raise MlflowException(
            f"Permission denied: hokusai_contributor {address} is not linked to this "
            f"credential's principal '{principal.username}' (rule {RULE}): prove the address "
            "first (POST /api/contributors/challenge, then /api/contributors/link) or have "
            "an admin set it", PERMISSION_DENIED)
    return "none"


def record(model_name: str, version: int, address: str, proof: str | None) -> None:
    """After MLflow stored the tag: who set it, with what proof. A failure here
    leaves the address unverified (the safe side), never the write undone."""
    principal = current_principal()
    if proof is None or principal is None or _config.links is None:
        return
    try:
        with _config.links.engine.begin() as connection:
            connection.execute(CL.insert().values(
                model_name=model_name, version=int(version), address=address,
                principal=principal.username, proof=proof, set_at=int(time.time() * 1000)))
    except sa.exc.SQLAlchemyError:
        _logger.exception("Could not record who set the contributor of %s:%s", model_name,
                          version)


def verified(engine, versions: list[tuple[str, int, str | None]]) -> set[tuple[str, int]]:
    """Of (model, version, current address) triples, those whose latest claim
    names that address with a proof."""
    wanted = {(name, int(number)): address for name, number, address in versions if address}
    if not wanted:
        return set()
    latest = sa.select(CL.c.model_name, CL.c.version, sa.func.max(CL.c.id).label("id")) \
        .where(CL.c.model_name.in_({name for name, _ in wanted})) \
        .group_by(CL.c.model_name, CL.c.version).subquery()
    with engine.connect() as connection:
        rows = connection.execute(sa.select(CL.c.model_name, CL.c.version, CL.c.address,
                                            CL.c.proof).join(latest, CL.c.id == latest.c.id))
        return {(row.model_name, row.version) for row in rows
                if wanted.get((row.model_name, row.version)) == row.address
                and row.proof in VERIFIED}


def address_verified(rows) -> set[tuple[str, int]]:
    """(model, version) of index rows whose contributor is verified, for answers."""
    if _config.links is None:
        return set()
    return verified(_config.links.engine, [(row["model_name"], row["version"],
                                            row["contributor"]) for row in rows])
