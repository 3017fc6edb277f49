"""The HS256 secret and the key pairs the test servers verify JWTs with, made
fresh for each run, and tokens signed with them."""

import time
import uuid

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa


def _public_pem(private_key) -> str:
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


RSA_PRIVATE = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_PUBLIC = _public_pem(RSA_PRIVATE)
EC_PRIVATE = ec.generate_private_key(ec.SECP256R1())
EC_PUBLIC = _public_pem(EC_PRIVATE)
JWT_SECRET = "test-secret-" + uuid.uuid4().hex


def jwt_token(algorithm, **claims) -> str:
    """A token the test servers accept (HS256 on any, RS256 on uvicorn's, ES256 on
    gunicorn's), read-scoped for a minute unless ``claims`` say otherwise."""
    payload = {"sub": "ci-bot", "scope": "read", "aud": "hokusai-tests",
               "exp": int(time.time()) + 60, **claims}
    key = {"HS256": JWT_SECRET, "RS256": RSA_PRIVATE, "ES256": EC_PRIVATE}[algorithm]
    return jwt.encode(payload, key, algorithm=algorithm)
