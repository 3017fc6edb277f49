"""JWT bearer tokens, verified with PyJWT against the configured secret or key."""

from __future__ import annotations

import jwt

from mlflow_hokusai.errors import AuthenticationFailed
from mlflow_hokusai.plugins.auth import scopes as scope_names

_SYMMETRIC = ("HS256", "HS384", "HS512")


class JwtVerifier:
    def __init__(self, settings):
        self.secret = settings.jwt_secret
        self.public_key = settings.jwt_public_key
        default = (("HS256",) if self.secret else ()) + \
                  (("RS256", "ES256") if self.public_key else ())
        self.algorithms = tuple(settings.jwt_algorithms or default)
        self.audience = settings.jwt_audience
        self.issuer = settings.jwt_issuer

    @property
    def enabled(self) -> bool:
        return bool(self.secret or self.public_key)

    def verify(self, token: str) -> dict:
        """The verified claims, with ``scopes`` normalised to a frozenset."""
        if not self.enabled:
            raise AuthenticationFailed("malformed")
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
            if not isinstance(algorithm, str) or algorithm not in self.algorithms:
                raise AuthenticationFailed("invalid")
            key = self.secret if algorithm in _SYMMETRIC else self.public_key
            if not key:
                raise AuthenticationFailed("invalid")
            claims = jwt.decode(token, key, algorithms=[algorithm], audience=self.audience,
                                issuer=self.issuer, options={"require": ["exp", "sub"]})
        except jwt.ExpiredSignatureError:
            raise AuthenticationFailed("expired") from None
        except jwt.DecodeError:
            raise AuthenticationFailed("malformed") from None
        except jwt.PyJWTError:
            # Any other refusal, including a key of the wrong type for the
            # token's algorithm (InvalidKeyError is not an InvalidTokenError).
            raise AuthenticationFailed("invalid") from None
        raw = claims.get("scope", claims.get("scopes", ""))
        names = raw.split() if isinstance(raw, str) else raw if isinstance(raw, list) else []
        claims["scopes"] = frozenset(str(n).lower() for n in names) & frozenset(scope_names.ALL)
        return claims
