"""Encoding and decoding of access and refresh JWTs: the only caller of PyJWT."""

import logging
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone

import jwt

from tokens import clock
from tokens.conf import ASYMMETRIC_ALGORITHMS, token_settings
from tokens.exceptions import TokenExpired, TokenInvalid
from tokens.signing_keys import KeySet, keyset

logger = logging.getLogger(__name__)

ACCESS = "access"
REFRESH = "refresh"

# Far above any token this service issues (~400 bytes); refuses absurd input before parsing.
MAX_TOKEN_LENGTH = 4096

# A JWS in compact form: three base64url segments, unpadded (RFC 7515). PyJWT refuses other
# characters and non-canonical spellings itself, but accepts padding ('='), so a token with
# a trailing '=' still verified: one token, several spellings.
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")

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
    # token). Lets the store adopt a token whose rotation it lost (see tokens/store/lua/rotate.lua).
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
    keys = keyset()
    return jwt.encode(payload, keys.signing_key, algorithm=keys.algorithm,
                      headers={"kid": keys.current_kid})


def decode(token: str, *, typ: str) -> Claims:
    """Verify `token` as a token of type `typ`; raise TokenExpired or TokenInvalid."""
    if (not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH
            or not TOKEN_SHAPE.fullmatch(token)):
        raise TokenInvalid()
    try:
        payload = _verified_payload(token, keyset())
    except jwt.ExpiredSignatureError:
        raise TokenExpired() from None
    except (jwt.PyJWTError, ValueError, TypeError):
        raise TokenInvalid() from None
    claims = _claims(payload)
    if claims.typ != typ:
        raise TokenInvalid(f"Token is not a {typ} token.")
    return claims


def _verified_payload(token: str, keys: KeySet) -> dict:
    checks = {
        # Pinned: the algorithm is never taken from the token's header.
        "algorithms": [keys.algorithm],
        "audience": token_settings.AUDIENCE,
        "issuer": token_settings.ISSUER,
        "options": {"require": REQUIRED_CLAIMS, "strict_aud": True},
    }
    if len(keys.verifying_keys) > 1:  # a key rotation under way: the `kid` picks the key
        return jwt.decode(token, _verifying_key(token, keys), **checks)
    # One key in force: verified with it, its header read afterwards, so the token is parsed
    # once rather than twice (about 20 us of each request).
    (kid, key), = keys.verifying_keys.items()
    try:
        found = jwt.decode_complete(token, key, **checks)
    except jwt.InvalidSignatureError:
        _verifying_key(token, keys)  # says so if it names a key we do not have
        raise
    if found["header"].get("kid", kid) != kid:
        raise TokenInvalid()
    return found["payload"]


def _verifying_key(token: str, keys: KeySet) -> bytes:
    """The key the token's `kid` names, among the current key and its fallbacks; a token
    without one (signed before key ids existed) is checked with the current key."""
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError:
        raise TokenInvalid() from None
    if kid is None:
        return keys.signing_key if keys.algorithm not in ASYMMETRIC_ALGORITHMS else next(
            iter(keys.verifying_keys.values()))
    if not isinstance(kid, str) or kid not in keys.verifying_keys:
        _report_unknown_kid(kid)
        raise TokenInvalid()
    return keys.verifying_keys[kid]


# An unknown key id is how a misconfiguration shows (API processes signing with different
# keys log users out): said once per id and interval, not once per request. Anyone can send
# a token naming a new id with each request, so at most REPORT_BUDGET ids are said per
# interval in all; then one line says the rest go unreported, and the next interval's first
# line how many did. Per process, and never more than REPORT_BUDGET ids held.
REPORT_EVERY_SECONDS = 3600
REPORT_BUDGET = 10


@dataclass
class _Reports:
    """The current interval's reported key ids, and the refusals not reported in it."""

    started: float = -float("inf")
    kids: set[str] = field(default_factory=set)
    unreported: int = 0


_reports = _Reports()
_reports_lock = threading.Lock()


def _report_unknown_kid(kid: object) -> None:
    name = kid if isinstance(kid, str) and len(kid) <= 64 and kid.isprintable() else "(malformed)"
    with _reports_lock:  # the lines are decided under the lock and logged after it
        lines = _lines_due(_reports, name, clock.now())
    for line in lines:
        logger.warning(*line)


def _lines_due(reports: _Reports, name: str, now: float) -> list[tuple]:
    lines = []
    if not reports.started <= now < reports.started + REPORT_EVERY_SECONDS:
        if reports.unreported:
            lines.append(("%d more tokens signed with unknown keys were refused without a "
                          "line each in the %d s from %s.", reports.unreported,
                          REPORT_EVERY_SECONDS, _utc(reports.started)))
        reports.started, reports.kids, reports.unreported = now, set(), 0
    if name in reports.kids:
        return lines
    if len(reports.kids) < REPORT_BUDGET:
        reports.kids.add(name)
        lines.append((
            "Token signed with an unknown key (kid=%r): refused. If users are being logged "
            "out, check that every API process has the same SECRET_KEY (or TOKENS signing "
            "key) and that retired keys are listed as fallbacks.", name))
    else:
        if not reports.unreported:
            lines.append(("%d unknown key ids said since %s: further tokens signed with "
                          "unknown keys are refused without a line each for the rest of "
                          "these %d s, then counted in one line.", REPORT_BUDGET,
                          _utc(reports.started), REPORT_EVERY_SECONDS))
        reports.unreported += 1
    return lines


def _utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="seconds")


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
