import time
from datetime import timedelta

import jwt as pyjwt
import pytest
import time_machine
from django.test import override_settings

from tests.helpers import b64
from tokens import jwt
from tokens.conf import token_settings
from tokens.exceptions import TokenExpired, TokenInvalid


def claims(**changes) -> jwt.Claims:
    now = int(time.time())
    base = dict(sub="7", sid="s1", gen=1, typ=jwt.REFRESH, jti="j1", iat=now, exp=now + 60)
    return jwt.Claims(**{**base, **changes})


def payload(**changes) -> dict:
    c = claims()
    data = {"iss": token_settings.ISSUER, "aud": token_settings.AUDIENCE, **c.__dict__}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def sign(data: dict, key=None, algorithm="HS256", headers=None) -> str:
    return pyjwt.encode(data, key or token_settings.SIGNING_KEY, algorithm=algorithm,
                        headers=headers)


def test_round_trip_keeps_every_claim():
    original = claims()
    assert jwt.decode(jwt.encode(original), typ=jwt.REFRESH) == original


def test_same_claims_sign_to_the_same_token():
    # Built once: two calls to claims() straddling a second boundary would differ in iat.
    original = claims()
    assert jwt.encode(original) == jwt.encode(jwt.Claims(**original.__dict__))


def test_refresh_token_is_not_an_access_token():
    with pytest.raises(TokenInvalid):
        jwt.decode(jwt.encode(claims(typ=jwt.REFRESH)), typ=jwt.ACCESS)


def test_access_token_is_not_a_refresh_token():
    with pytest.raises(TokenInvalid):
        jwt.decode(jwt.encode(claims(typ=jwt.ACCESS)), typ=jwt.REFRESH)


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_unsigned_token_is_refused(alg):
    token = f"{b64({'alg': alg, 'typ': 'JWT'})}.{b64(payload())}."
    with pytest.raises(TokenInvalid):
        jwt.decode(token, typ=jwt.REFRESH)


def test_token_signed_with_another_key_is_refused():
    with pytest.raises(TokenInvalid):
        jwt.decode(sign(payload(), key=b"k" * 32), typ=jwt.REFRESH)


def test_token_signed_with_another_hmac_algorithm_is_refused():
    with pytest.raises(TokenInvalid):
        jwt.decode(sign(payload(), algorithm="HS512"), typ=jwt.REFRESH)


def test_tampered_payload_is_refused():
    header, _, signature = jwt.encode(claims()).split(".")
    forged = f"{header}.{b64(payload(sub='1'))}.{signature}"
    with pytest.raises(TokenInvalid):
        jwt.decode(forged, typ=jwt.REFRESH)


def test_tampered_signature_is_refused():
    token = jwt.encode(claims())
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(TokenInvalid):
        jwt.decode(flipped, typ=jwt.REFRESH)


@pytest.mark.parametrize("missing", ["iss", "aud", "sub", "sid", "gen", "typ", "jti", "iat", "exp"])
def test_token_missing_a_required_claim_is_refused(missing):
    with pytest.raises(TokenInvalid):
        jwt.decode(sign(payload(**{missing: None})), typ=jwt.REFRESH)


@pytest.mark.parametrize(
    "changes",
    [{"iss": "someone-else"}, {"aud": "another-api"}, {"aud": ["another-api"]},
     # The audience is this API's name itself, not a list naming it among others.
     {"aud": [token_settings.AUDIENCE]}, {"aud": [token_settings.AUDIENCE, "another-api"]},
     {"gen": "1"}, {"sub": 7}, {"sid": ""}, {"exp": "soon"}],
)
def test_token_with_wrong_claim_values_is_refused(changes):
    with pytest.raises(TokenInvalid):
        jwt.decode(sign(payload(**changes)), typ=jwt.REFRESH)


def test_token_not_yet_valid_is_refused():
    with pytest.raises(TokenInvalid):
        jwt.decode(sign(payload(nbf=claims().iat + 3600)), typ=jwt.REFRESH)


def test_expired_token_says_so():
    token = jwt.encode(claims())
    with time_machine.travel(timedelta(seconds=61)), pytest.raises(TokenExpired):
        jwt.decode(token, typ=jwt.REFRESH)


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "x" * 5000, "é.é.é", None, 42])
def test_garbage_is_refused_cleanly(token):
    with pytest.raises(TokenInvalid):
        jwt.decode(token, typ=jwt.REFRESH)


def test_algorithm_is_pinned_by_settings_not_header():
    token = sign(payload(), algorithm="HS384")
    with override_settings(TOKENS={"ALGORITHM": "HS384"}):
        assert jwt.decode(token, typ=jwt.REFRESH).sub == "7"
    with pytest.raises(TokenInvalid):
        jwt.decode(token, typ=jwt.REFRESH)


def test_signing_key_change_invalidates_tokens():
    token = jwt.encode(claims())
    with override_settings(TOKENS={"SIGNING_KEY": "another-signing-key-of-32-bytes-or-more!"}):
        with pytest.raises(TokenInvalid):
            jwt.decode(token, typ=jwt.REFRESH)


def respellings(token: str) -> dict[str, str]:
    """Other spellings of `token`'s signature, which a lenient base64url decoder reads as the
    same bytes (the header and payload are signed as spelt, so they cannot be respelt)."""
    signed, signature = token.rsplit(".", 1)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    assert len(signature) % 4 in (2, 3)  # HS256: 43 characters, the last with 2 unused bits
    stray = alphabet[alphabet.index(signature[-1]) | 1]
    return {
        "trailing =": f"{token}=",
        "padded": f"{token}{'=' * (-len(signature) % 4)}",
        "stray low bits": f"{signed}.{signature[:-1]}{stray}",
        "standard alphabet": f"{signed}.{signature.replace('-', '+').replace('_', '/')}",
        "trailing newline": f"{token}\n",
        "space inside": f"{signed}.{signature[:5]} {signature[5:]}",
        "four segments": f"{token}.",
    }


def spelled_token(typ: str) -> str:
    """A token whose signature has - or _ (so the standard alphabet spells it otherwise) and
    a last character with a low bit clear (so it has a stray-bit spelling)."""
    for n in range(500):
        token = jwt.encode(claims(typ=typ, jti=f"j{n}"))
        signature = token.rsplit(".", 1)[1]
        if ("-" in signature or "_" in signature) and signature[-1] in "AEIMQUYcgkosw048":
            return token
    raise AssertionError("no such token")


@pytest.mark.parametrize("typ", [jwt.ACCESS, jwt.REFRESH])
@pytest.mark.parametrize("spelling", list(respellings("a.b." + "c" * 43)))
def test_a_token_is_parsed_strictly_in_one_spelling(typ, spelling):
    # PyJWT pads and decodes leniently: a token with a trailing '=' still verified.
    token = spelled_token(typ)
    assert jwt.decode(token, typ=typ).typ == typ
    assert respellings(token)[spelling] != token
    with pytest.raises(TokenInvalid):
        jwt.decode(respellings(token)[spelling], typ=typ)
