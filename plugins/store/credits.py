"""What the registry store does around a write of the tags a payout rests on:
before MLflow writes, the contributor rule (plugins.contributors.proof); after
it committed, the record of who set the address, and the ``version_registered``
event (mlflow_hokusai.signals) when the version carries a token, which the
ledger appends to its chain. Events go out only after MLflow's commit, so the
ledger never holds a registration that was rolled back.
"""

from __future__ import annotations

from mlflow_hokusai import signals
from mlflow_hokusai.pipeline import current_principal
from mlflow_hokusai.plugins.contributors import proof
from mlflow_hokusai.plugins.store import tags as hokusai_tags


def check(parsed: dict) -> str | None:
    """The caller's proof for the contributor among ``parsed`` tags (raises when refused)."""
    address = parsed.get(hokusai_tags.CONTRIBUTOR)
    return proof.check(address) if address else None


def written(name: str, version, parsed: dict, raw: dict, proof_held: str | None,
            **details) -> None:
    address = parsed.get(hokusai_tags.CONTRIBUTOR)
    if address:
        proof.record(name, int(version), address, proof_held)
    token = parsed.get(hokusai_tags.TOKEN_ID)
    if token is None:
        return
    principal = current_principal()
    data = {key: raw[key] for key in sorted(raw) if key in hokusai_tags.VERSION_TAGS}
    data.update({key: value for key, value in details.items() if value is not None})
    if address:
        data["address_verified"] = proof_held in proof.VERIFIED
    signals.contribution_recorded.send(
        "registry", event="version_registered", token_id=token, model_name=name,
        version=int(version), principal=principal.username if principal else None, data=data)
