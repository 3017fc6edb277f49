"""Ethereum addresses: ``0x`` + 40 hex digits; mixed case must carry a valid
EIP-55 checksum. Keccak-256 comes from eth-hash: Python's ``hashlib.sha3_256``
is the final SHA-3, whose padding differs, so it gives other digests."""

from __future__ import annotations

import re

from eth_hash.auto import keccak

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


class InvalidAddress(ValueError):
    pass


def checksum_address(address: str) -> str:
    """The EIP-55 spelling of a well-formed address."""
    digits = address[2:].lower()
    digest = keccak(digits.encode("ascii")).hex()
    # The hash has more digits than the address: only the first 40 count.
    cased = (c.upper() if int(d, 16) >= 8 else c for c, d in zip(digits, digest, strict=False))
    return "0x" + "".join(cased)


def normalize_address(address: str) -> str:
    """The lower-case form, after checking the shape and (for mixed case) the checksum."""
    if not isinstance(address, str) or not _ADDRESS.fullmatch(address):
        raise InvalidAddress(f"Invalid Ethereum address {address!r}: expected 0x followed "
                             "by 40 hexadecimal digits")
    digits = address[2:]
    if digits != digits.lower() and digits != digits.upper() \
            and address != checksum_address(address):
        raise InvalidAddress(f"Invalid Ethereum address {address!r}: mixed case fails the "
                             "EIP-55 checksum")
    return "0x" + digits.lower()
