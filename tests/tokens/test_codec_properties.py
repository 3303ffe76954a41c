"""Property tests of the token codec: garbage is refused cleanly, claims round-trip, and
arbitrary JSON signed with the real key is either well-typed claims or refused, never a 500."""

import base64
import hashlib
import hmac
import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import LOGOUT, ME, REFRESH, b64
from tokens import jwt
from tokens.conf import token_settings
from tokens.exceptions import TokenExpired, TokenInvalid

ids = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1,
              max_size=64)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=600), st.binary(max_size=600).map(lambda b: b.decode("latin-1"))))
def test_arbitrary_strings_are_refused_cleanly(garbage):
    for typ in (jwt.ACCESS, jwt.REFRESH):
        try:
            jwt.decode(garbage, typ=typ)
        except (TokenInvalid, TokenExpired):
            pass
        else:
            raise AssertionError(f"accepted {garbage!r}")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
                        max_size=200), min_size=3, max_size=3))
def test_arbitrary_three_part_tokens_are_refused(parts):
    try:
        jwt.decode(".".join(parts), typ=jwt.REFRESH)
    except TokenInvalid:
        return
    raise AssertionError("a made-up token was accepted")


@settings(max_examples=200, deadline=None)
@given(sub=ids, sid=ids, jti=ids, gen=st.integers(min_value=0, max_value=2**53),
       typ=st.sampled_from([jwt.ACCESS, jwt.REFRESH]),
       lifetime=st.integers(min_value=60, max_value=10**8))
def test_encode_then_decode_round_trips(sub, sid, jti, gen, typ, lifetime):
    now = int(time.time())
    claims = jwt.Claims(sub=sub, sid=sid, gen=gen, typ=typ, jti=jti, iat=now, exp=now + lifetime)
    token = jwt.encode(claims)
    assert jwt.decode(token, typ=typ) == claims
    assert jwt.encode(claims) == token  # deterministic: the leeway replay depends on it


# --- Signed with the real key: arbitrary JSON where the claims go ---
# Random text almost never decodes to a JSON header and payload, let alone a signed one, so
# the tests above never reach the claim-type checks. These sign arbitrary JSON payloads with
# the service's own key, HS256, and the service's issuer and audience.

CLAIM_NAMES = ("iss", "aud", "sub", "sid", "gen", "typ", "jti", "iat", "exp", "par")
HEADER_NAMES = ("kid", "typ", "cty", "b64", "crit", "jwk", "jku", "x5u", "x5c", "zip")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=8,
)
# Every JSON type at the top level often, not only when the recursion happens to pick it.
wrong_values = st.one_of(st.none(), st.booleans(), st.integers(),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20),
                         json_values)


# Fixed once: a strategy must not depend on the clock. Tokens drawn as valid expire an hour
# later at the earliest, far beyond the suite's run.
NOW = int(time.time())


def plausible(name: str, real: dict) -> st.SearchStrategy:
    """Values of the right type and range for claim `name` (and the real session's, if any)."""
    known = [st.just(real[name])] if name in real else []
    return st.one_of(*known, {
        "iss": st.just(token_settings.ISSUER),
        "aud": st.just(token_settings.AUDIENCE),
        "typ": st.sampled_from([jwt.ACCESS, jwt.REFRESH]),
        "gen": st.integers(min_value=-(2**64), max_value=2**64),
        "iat": st.integers(min_value=NOW - 10**6, max_value=NOW),
        "exp": st.integers(min_value=NOW + 3600, max_value=NOW + 10**8),
        "par": st.text(max_size=20),
        # A user id as the database sees it: any integer, in range of its column or not.
        "sub": st.one_of(st.text(min_size=1, max_size=20),
                         st.one_of(st.integers(), st.integers(min_value=2**63),
                                   st.integers(max_value=-(2**63) - 1)).map(str)),
    }.get(name, st.text(min_size=1, max_size=20)))


@st.composite
def payloads(draw, *, envelope: bool, typ: str | None = None, real: dict | None = None) -> dict:
    """A payload with some claims broken (arbitrary JSON, or missing) and the others
    plausible (`typ` the one asked for, when given); with `envelope`, what PyJWT checks (iss,
    aud, iat, exp) is never broken, so that only our own checks judge."""
    names = [n for n in CLAIM_NAMES if not (envelope and n in ("iss", "aud", "iat", "exp"))]
    # None, one (each check on its own) or any number of claims broken.
    broken = draw(st.one_of(st.just(set()), st.sets(st.sampled_from(names), min_size=1,
                                                    max_size=1),
                            st.sets(st.sampled_from(names))))
    extra = st.text(max_size=8).filter(lambda k: k not in CLAIM_NAMES and k != "nbf")
    payload = draw(st.dictionaries(extra, json_values, max_size=2))
    for name in CLAIM_NAMES:
        if name not in broken:
            good = st.just(typ) if name == "typ" and typ else plausible(name, real or {})
            payload[name] = draw(good)
        elif draw(st.booleans()):
            payload[name] = draw(wrong_values)
    return payload


def sign(payload, headers: dict | None = None) -> str:
    segments = [{**(headers or {}), "alg": "HS256"}, payload]
    signing_input = ".".join(b64(part) for part in segments)
    mac = hmac.new(token_settings.SIGNING_KEY, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def acceptable(payload: dict, typ: str) -> bool:
    """Whether a payload with the right issuer and audience holds a live token of type
    `typ` whose every claim has its type (what tokens.jwt._claims demands)."""
    strings = all(isinstance(payload.get(name), str) and payload[name]
                  for name in ("sub", "sid", "typ", "jti"))
    integers = all(type(payload.get(name)) is int for name in ("gen", "iat", "exp"))
    parent = isinstance(payload.get("par", ""), str)
    if not (strings and integers and parent and payload["typ"] == typ):
        return False
    return payload["iat"] <= time.time() < payload["exp"]


def valid_payload(typ: str) -> dict:
    return {"iss": token_settings.ISSUER, "aud": token_settings.AUDIENCE, "sub": "1",
            "sid": "s", "gen": 1, "typ": typ, "jti": "j", "iat": NOW, "exp": NOW + 3600,
            "par": "p"}


MISSING = object()
# One of each JSON type, and the values a lax check would take for its neighbour's type.
EVERY_JSON_TYPE = [MISSING, None, True, False, 0, 7, -1, 2**64, 1.0, 1.5, "", "7", [], ["7"],
                   {}, {"gen": 1}]


@pytest.mark.parametrize("name", ["sub", "sid", "gen", "typ", "jti", "par", "iat", "exp"])
def test_a_claim_holding_any_json_type_is_accepted_only_with_its_own_type(name):
    # Every claim check in tokens.jwt._claims, each value type on its own: Hypothesis below
    # finds combinations, this makes sure no single check goes unexercised.
    for typ in (jwt.ACCESS, jwt.REFRESH):
        for value in EVERY_JSON_TYPE:
            payload = valid_payload(typ)
            if value is MISSING:
                del payload[name]
            else:
                payload[name] = value
            try:
                claims = jwt.decode(sign(payload), typ=typ)
            except (TokenInvalid, TokenExpired):
                assert not acceptable(payload, typ), payload
            else:
                assert acceptable(payload, typ), payload
                assert claims == jwt.Claims(**{n: payload.get(n, "")
                                               for n in jwt.Claims.__dataclass_fields__})


@settings(max_examples=200, deadline=None)
@given(data=st.data(), typ=st.sampled_from([jwt.ACCESS, jwt.REFRESH]))
def test_signed_payloads_are_accepted_exactly_when_well_typed(data, typ):
    payload = data.draw(payloads(envelope=True, typ=typ))
    try:
        claims = jwt.decode(sign(payload), typ=typ)
    except TokenInvalid:
        assert not acceptable(payload, typ), payload
        return
    assert acceptable(payload, typ), payload
    assert claims == jwt.Claims(**{name: payload.get(name, "")
                                   for name in jwt.Claims.__dataclass_fields__})


@settings(max_examples=200, deadline=None)
@given(payload=st.one_of(payloads(envelope=False), wrong_values),
       headers=st.dictionaries(st.sampled_from(HEADER_NAMES) | st.text(max_size=8), json_values,
                               max_size=3),
       typ=st.sampled_from([jwt.ACCESS, jwt.REFRESH]))
def test_signed_arbitrary_json_is_typed_claims_or_refused(payload, headers, typ):
    try:
        claims = jwt.decode(sign(payload, headers), typ=typ)
    except (TokenInvalid, TokenExpired):
        return
    assert claims.typ == typ
    assert all(isinstance(value, str) and value for value in (claims.sub, claims.sid,
                                                                claims.jti))
    assert isinstance(claims.par, str)
    assert all(type(value) is int for value in (claims.gen, claims.iat, claims.exp))


@pytest.mark.django_db
@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_signed_arbitrary_claims_never_make_the_api_fail(api, user, login, data):
    # The real user, session and token ids are among the values drawn, so that requests get
    # past the user lookup into the store with odd generations, ids and parents.
    pair = login(user)
    real = {name: value for name, value in jwt_claims(pair["refresh_token"]).items()
            if name in ("sub", "sid", "jti")}
    real["par"] = real["jti"]
    token = sign(data.draw(payloads(envelope=data.draw(st.booleans()), real=real)))
    for response in (
        api.post(REFRESH, {"refresh_token": token}, format="json"),
        api.get(ME, HTTP_AUTHORIZATION=f"Bearer {token}"),
        api.post(LOGOUT, {"refresh_token": token}, format="json"),
    ):
        assert response.status_code in (200, 204, 401), (response.status_code, token)
        if response.status_code == 401:
            assert response.json()["code"] in (
                "token_invalid", "token_expired", "token_reused", "session_revoked")


def jwt_claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
