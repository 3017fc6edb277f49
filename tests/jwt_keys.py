"""Key pairs for the JWT tests, made fresh for each run."""

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa


def _public_pem(private_key) -> str:
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


RSA_PRIVATE = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_PUBLIC = _public_pem(RSA_PRIVATE)
EC_PRIVATE = ec.generate_private_key(ec.SECP256R1())
EC_PUBLIC = _public_pem(EC_PRIVATE)
