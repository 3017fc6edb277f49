"""The API key format: ``hk_live_<30 base62 random><6 base62 CRC32>``.

30 base62 characters carry 178 random bits. The CRC32 checksum lets the gate
refuse a mistyped or made-up key without touching the database (GitHub's token
design); it is not a secret and proves nothing about authenticity.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string
import zlib

ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase
BODY_LENGTH = 30
CHECKSUM_LENGTH = 6
ENVIRONMENTS = ("live", "test")
PREFIX_LENGTH = len("hk_live_") + 4
_KEY_RE = re.compile(rf"hk_(?:live|test)_[0-9A-Za-z]{{{BODY_LENGTH + CHECKSUM_LENGTH}}}")


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        digits.append(ALPHABET[digit])
    return "".join(reversed(digits))


def _checksum(head: str) -> str:
    return _base62(zlib.crc32(head.encode()), CHECKSUM_LENGTH)


def generate(environment: str = "live") -> str:
    if environment not in ENVIRONMENTS:
        raise ValueError(f"environment must be one of {ENVIRONMENTS}")
    head = f"hk_{environment}_" + "".join(secrets.choice(ALPHABET) for _ in range(BODY_LENGTH))
    return head + _checksum(head)


def looks_like_key(value: str) -> bool:
    return value.startswith("hk_")


def is_well_formed(key: str) -> bool:
    if not _KEY_RE.fullmatch(key):
        return False
    head, checksum = key[:-CHECKSUM_LENGTH], key[-CHECKSUM_LENGTH:]
    return _checksum(head) == checksum


def hash_key(key: str) -> str:
    """What the database stores: a fast hash is right for 178-bit random keys
    (a password KDF per request is what made MLflow's basic-auth slow)."""
    return hashlib.sha256(key.encode()).hexdigest()


def display_prefix(key: str) -> str:
    return key[:PREFIX_LENGTH]
