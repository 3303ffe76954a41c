"""Encoding and decoding of access and refresh JWTs: the only caller of PyJWT."""

from dataclasses import dataclass

import jwt

from tokens.conf import token_settings
from tokens.exceptions import TokenExpired, TokenInvalid

ACCESS = "access"
REFRESH = "refresh"

# Far above any token this service issues (~400 bytes); refuses absurd input before parsing.
MAX_TOKEN_LENGTH = 4096

REQUIRED_CLAIMS = ["iss", "aud", "sub", "sid", "gen", "typ", "jti", "iat", "exp"]


@dataclass(frozen=True)
class Claims:
    """What a token says: whose session, which generation, which token, and when."""

    sub: str
    sid: str
    gen: int
    typ: str
    jti: str
    iat: int
    exp: int
    # A refresh token's parent: the jti of the token it replaced ('' for a session's first
    # token). Lets the store adopt a token whose rotation it lost (see store._ROTATE).
    par: str = ""


def encode(claims: Claims) -> str:
    """Sign `claims`. HMAC signatures are deterministic: the same claims give the same token."""
    # Built by hand, not dataclasses.asdict (a recursive deep copy, measurably slow here);
    # the key order is fixed, so the same claims always serialise to the same bytes.
    payload = {
        "iss": token_settings.ISSUER, "aud": token_settings.AUDIENCE, "sub": claims.sub,
        "sid": claims.sid, "gen": claims.gen, "typ": claims.typ, "jti": claims.jti,
        "iat": claims.iat, "exp": claims.exp,
    }
    if claims.typ == REFRESH:
        payload["par"] = claims.par
    return jwt.encode(payload, token_settings.SIGNING_KEY, algorithm=token_settings.ALGORITHM)


def decode(token: str, *, typ: str) -> Claims:
    """Verify `token` as a token of type `typ`; raise TokenExpired or TokenInvalid."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise TokenInvalid()
    try:
        payload = jwt.decode(
            token,
            token_settings.verifying_key,
            # Pinned: the algorithm is never taken from the token's header.
            algorithms=[token_settings.ALGORITHM],
            audience=token_settings.AUDIENCE,
            issuer=token_settings.ISSUER,
            options={"require": REQUIRED_CLAIMS, "strict_aud": True},
        )
    except jwt.ExpiredSignatureError:
        raise TokenExpired() from None
    except (jwt.PyJWTError, ValueError, TypeError):
        raise TokenInvalid() from None
    claims = _claims(payload)
    if claims.typ != typ:
        raise TokenInvalid(f"Token is not a {typ} token.")
    return claims


def _claims(payload: dict) -> Claims:
    # `par` is optional: refresh tokens issued before it existed have none.
    fields = {name: payload.get(name, "") for name in Claims.__dataclass_fields__}
    strings = ("sub", "sid", "typ", "jti")
    if not all(isinstance(fields[name], str) and fields[name] for name in strings):
        raise TokenInvalid()
    if not isinstance(fields["par"], str):
        raise TokenInvalid()
    if not all(type(fields[name]) is int for name in ("gen", "iat", "exp")):
        raise TokenInvalid()
    return Claims(**fields)
