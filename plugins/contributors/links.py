"""Challenges and proven links between principals and Ethereum addresses.

A principal asks for a challenge naming an address; the server writes the
EIP-4361 message (siwe.py) and keeps it with a random nonce. Linking hands
the message back signed: the nonce is spent first (once, even when what
follows fails), then the challenge must be the caller's, unexpired, for this
server's domain and URI, the same text, and signed by the address's key.
``clock`` returns epoch milliseconds (injected by tests).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

import sqlalchemy as sa

from mlflow_hokusai.db.schema import contributor_challenges as C
from mlflow_hokusai.db.schema import contributor_links as L
from mlflow_hokusai.errors import BadRequest, Conflict, HokusaiError, NotFound
from mlflow_hokusai.plugins.contributors import siwe


class LinkRefused(BadRequest):
    """400 naming what failed (``reason``: one word a client can branch on)."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail, reason=reason)


class SignatureRefused(HokusaiError):
    """403: a well-formed signature by another key than the challenged address's."""

    status = 403
    error_code = "PERMISSION_DENIED"

    def __init__(self, detail: str):
        super().__init__(detail, reason="wrong_signer")


class NonceSpent(Conflict):
    def __init__(self):
        super().__init__("This challenge was already used: ask for a new one",
                         reason="replayed")


def _millis() -> int:
    return int(time.time() * 1000)


class Links:
    def __init__(self, engine, public_url: str | None, challenge_minutes: int,
                 clock: Callable[[], int] = _millis):
        self.engine = engine
        self.public_url = public_url
        self.ttl_ms = challenge_minutes * 60_000
        self.clock = clock

    def challenge(self, principal: str, address: str) -> dict:
        assert self.public_url is not None  # the API refuses before, when it is unset
        now, nonce = self.clock(), secrets.token_hex(16)
        row = {"nonce": nonce, "principal": principal, "address": address, "issued_at": now,
               "expires_at": now + self.ttl_ms,
               "message": siwe.compose(public_url=self.public_url, address=address,
                                       principal=principal, nonce=nonce, issued_at=now,
                                       expires_at=now + self.ttl_ms)}
        with self.engine.begin() as connection:
            # Spent and long-expired challenges are of no use to anyone.
            connection.execute(C.delete().where(C.c.expires_at < now - self.ttl_ms))
            connection.execute(C.insert().values(**row))
        return {"address": address, "nonce": nonce, "message": row["message"],
                "expires_at": row["expires_at"]}

    def _spend(self, principal: str, nonce: str) -> dict:
        with self.engine.begin() as connection:
            row = connection.execute(sa.select(C).where(C.c.nonce == nonce)).mappings().first()
            if row is None or row["principal"] != principal:
                # Another principal's nonce answers as unknown: it is not theirs to spend.
                raise LinkRefused("unknown_nonce", "No challenge with this nonce was issued "
                                  "to this credential's principal")
            if row["expires_at"] <= self.clock():
                raise LinkRefused("expired", "The challenge expired: ask for a new one")
            spent = connection.execute(C.update().where(C.c.nonce == nonce,
                                                        C.c.used_at.is_(None))
                                       .values(used_at=self.clock())).rowcount
        if spent != 1:
            raise NonceSpent()
        return dict(row)

    def link(self, principal: str, message: str, signature: str) -> dict:
        nonce = siwe.field(message, "Nonce")
        if not nonce:
            raise LinkRefused("malformed", "The message has no 'Nonce:' line")
        challenge = self._spend(principal, nonce)
        assert self.public_url is not None  # the API refuses before, when it is unset
        expected = siwe.domain_of(self.public_url)
        if siwe.domain(message) != expected or siwe.field(message, "URI") != self.public_url:
            raise LinkRefused("domain", f"The message is for {siwe.domain(message)!r} "
                              f"({siwe.field(message, 'URI')}); this server is {expected!r} "
                              f"({self.public_url})")
        if message != challenge["message"]:
            raise LinkRefused("altered", "The message differs from the challenge issued")
        signed_by = siwe.signer(message, signature)
        if signed_by is None:
            raise LinkRefused("malformed", "The signature is not a valid Ethereum signature")
        if signed_by != challenge["address"]:
            raise SignatureRefused(f"The message was signed by {signed_by}, not by "
                                   f"{challenge['address']}")
        row = {"principal": principal, "address": challenge["address"],
               "linked_at": self.clock(), "message": message, "signature": signature}
        with self.engine.begin() as connection:
            connection.execute(L.delete().where(L.c.principal == principal,
                                                L.c.address == row["address"]))
            connection.execute(L.insert().values(**row))
        return {"principal": principal, "address": row["address"],
                "linked_at": row["linked_at"]}

    def of(self, principal: str) -> list[dict]:
        with self.engine.connect() as connection:
            return [dict(row) for row in connection.execute(
                sa.select(L.c.address, L.c.linked_at).where(L.c.principal == principal)
                .order_by(L.c.linked_at)).mappings()]

    def holds(self, principal: str, address: str) -> bool:
        with self.engine.connect() as connection:
            return connection.execute(sa.select(L.c.address).where(
                L.c.principal == principal, L.c.address == address)).first() is not None

    def unlink(self, principal: str, address: str) -> None:
        with self.engine.begin() as connection:
            removed = connection.execute(L.delete().where(
                L.c.principal == principal, L.c.address == address)).rowcount
        if not removed:
            raise NotFound(f"{principal} holds no link to {address}")
