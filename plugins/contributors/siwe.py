"""Sign-In with Ethereum (EIP-4361) messages: the server writes the whole text
of each challenge and keeps it, so on the way back it only has to find the
challenge (by its nonce), check the domain and URI the text names against its
own, compare the text, and recover the signer (EIP-191 ``personal_sign``, with
eth-keys). Nothing the client sends is parsed beyond those three lines.

(The ``siwe`` package itself was not used: 4.4 fails to import with abnf 2.9,
and it pulls in web3 for contract-wallet checks this server does not make. Nor
is eth-account, whose ``recover_message`` does what ``signer`` does: importing
it cost every server worker 1.4 s at boot, and it imports py_ecc, which raises
the interpreter's recursion limit to 100,000 for the whole process, so that a
deeply nested JSON body overflowed the C stack instead of raising
RecursionError.)
"""

from __future__ import annotations

import datetime
import re
from urllib.parse import urlsplit

from eth_hash.auto import keccak

from mlflow_hokusai.plugins.store.ethereum import checksum_address

_HEADER = re.compile(r"\A(?P<domain>\S+) wants you to sign in with your Ethereum account:\n")
_FIELD = r"^{}: (?P<value>[^\n]*)$"


def _iso(millis: int) -> str:
    moment = datetime.datetime.fromtimestamp(millis / 1000, datetime.timezone.utc)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def domain_of(public_url: str) -> str:
    return urlsplit(public_url).netloc


def compose(*, public_url: str, address: str, principal: str, nonce: str, issued_at: int,
            expires_at: int, chain_id: int = 1) -> str:
    """The EIP-4361 text a wallet shows and signs."""
    # The statement is one line of printable text (the spec forbids a newline).
    who = "".join(ch for ch in principal if ch.isprintable())[:100]
    return (f"{domain_of(public_url)} wants you to sign in with your Ethereum account:\n"
            f"{checksum_address(address)}\n\n"
            f"Link this address to the Hokusai principal '{who}' so that contributions "
            f"it signs for are credited to it.\n\n"
            f"URI: {public_url}\nVersion: 1\nChain ID: {chain_id}\nNonce: {nonce}\n"
            f"Issued At: {_iso(issued_at)}\nExpiration Time: {_iso(expires_at)}")


def field(message: str, name: str) -> str | None:
    found = re.search(_FIELD.format(re.escape(name)), message, re.MULTILINE)
    return found["value"] if found else None


def domain(message: str) -> str | None:
    found = _HEADER.match(message)
    return found["domain"] if found else None


def personal_sign_hash(message: str) -> bytes:
    """EIP-191 version 0x45, as wallets' ``personal_sign`` hashes a text."""
    data = message.encode()
    return keccak(b"\x19Ethereum Signed Message:\n" + str(len(data)).encode() + data)


# 65 bytes as hex (r, s, recovery id), as wallets send them; nothing else, so the
# stored text is what eth-account or ethers would verify again.
_SIGNATURE = re.compile(r"(?:0[xX])?[0-9a-fA-F]{130}")


def _recovery_id(v: int) -> int | None:
    """0 or 1, as eth-account reads the last byte: 0/1, 27/28, or EIP-155's
    35 + 2 * chain id + 0/1."""
    if v in (0, 1, 27, 28):
        return v % 27
    return (v - 35) % 2 if v >= 35 else None


def signer(message: str, signature: str) -> str | None:
    """The lower-case address whose key signed ``message``, or None when the
    signature is not one (not 65 bytes of hex, an unknown recovery id, not on
    the curve)."""
    if not _SIGNATURE.fullmatch(signature):
        return None
    raw = bytes.fromhex(signature[-130:])
    recovery = _recovery_id(raw[64])
    if recovery is None:
        return None
    # Imported here: eth-keys loads eth-utils' network tables (0.25 s) that a
    # worker needs only when someone links a wallet.
    from eth_keys import keys

    vrs = (recovery, int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big"))
    try:
        public_key = keys.Signature(vrs=vrs).recover_public_key_from_msg_hash(
            personal_sign_hash(message))
    except Exception:  # noqa: BLE001 - eth-keys raises several types for a malformed signature
        return None
    return public_key.to_checksum_address().lower()
