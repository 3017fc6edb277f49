"""Sign-In with Ethereum (EIP-4361) messages: the server writes the whole text
of each challenge and keeps it, so on the way back it only has to find the
challenge (by its nonce), check the domain and URI the text names against its
own, compare the text, and recover the signer (EIP-191 ``personal_sign``, with
eth-account). Nothing the client sends is parsed beyond those three lines.

(The ``siwe`` package itself was not used: 4.4 fails to import with abnf 2.9,
and it pulls in web3 for contract-wallet checks this server does not make.)
"""

from __future__ import annotations

import datetime
import re
import sys
from urllib.parse import urlsplit

# eth-account imports py_ecc, which raises the interpreter's recursion limit to
# 100,000 for the whole process; with it, a deeply nested JSON body overflows
# the C stack (SIGSEGV, a worker killed by any key holder) instead of raising
# RecursionError (a 400). Put the limit back.
_LIMIT = sys.getrecursionlimit()
from eth_account import Account  # noqa: E402
from eth_account.messages import encode_defunct  # noqa: E402

sys.setrecursionlimit(_LIMIT)

from mlflow_hokusai.plugins.store.ethereum import checksum_address  # noqa: E402

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


def signer(message: str, signature: str) -> str | None:
    """The lower-case address whose key signed ``message``, or None when the
    signature is not one (wrong length, not hex, not on the curve)."""
    try:
        recovered = Account.recover_message(encode_defunct(text=message), signature=signature)
    except Exception:  # noqa: BLE001 - eth-account raises several types for a malformed signature
        return None
    return recovered.lower()
