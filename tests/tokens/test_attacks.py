"""Forged, tampered and malformed tokens, on the refresh and logout endpoints and on Bearer auth:
every one answers 401 (400 for a malformed body) with the JSON error body, never a 500."""

import hashlib
import hmac
import time

import jwt as pyjwt
import pytest
from django.test import override_settings

from tests.helpers import (
    LOGOUT, ME, REFRESH, assert_error, b64, claims_of, ed25519_pems, me, refresh, rsa_pems,
)
from tokens import jwt
from tokens.conf import token_settings
from tokens.signing_keys import keyset

pytestmark = pytest.mark.django_db


# The attacker's own HMAC key: a forgery signed with it is accepted only by a verifier that
# takes its key from the token's header (jwk, jku, x5u, kid) instead of from settings.
ATTACKER_KEY = b"attacker-chosen-hmac-key-of-32+bytes"
HS256 = {"alg": "HS256", "typ": "JWT"}  # the service's own algorithm: pinning alone is no defence


def signed(claims: dict, key: bytes, **headers) -> str:
    """HS256 by hand, so that any header and any key (an empty one too) can be used."""
    signing_input = f"{b64({**HS256, **headers})}.{b64(claims)}"
    mac = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def ours(claims: dict, **headers) -> str:
    """Signed with the service's own key and key id: only the claims (or headers) differ."""
    return signed(claims, token_settings.SIGNING_KEY, **{"kid": keyset().current_kid, **headers})


def header_attacks(claims: dict) -> dict[str, tuple[dict, bytes]]:
    """Forgeries whose only flaw is a key the header chooses: name -> (headers, key)."""
    return {
        "jwk header carrying the attacker's key": (
            {"jwk": {"kty": "oct", "k": b64(ATTACKER_KEY)}}, ATTACKER_KEY),
        "jku header, the attacker's key set": ({"jku": "https://evil.example/jwks.json"},
                                              ATTACKER_KEY),
        "x5u header, the attacker's certificate": ({"x5u": "https://evil.example/cert.pem"},
                                                   ATTACKER_KEY),
        "kid naming another key": ({"kid": "attacker"}, ATTACKER_KEY),
        "kid pointing at /dev/null, empty key": ({"kid": "../../../../../../dev/null"}, b""),
    }


def forgeries(token: str) -> dict[str, tuple[str, str]]:
    """name -> (forged token, the code it must get). Each differs from a token the service
    would accept in the one thing it tests (see test_each_forgery_has_a_single_flaw)."""
    claims = claims_of(token)
    header, payload, signature = token.split(".")
    now = int(time.time())
    longer = b64({**claims, "exp": claims["exp"] + 86400})  # would extend its own life
    forged = {
        "alg none": (f"{b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.", "token_invalid"),
        "alg None, signature kept": (f"{b64({'alg': 'None'})}.{payload}.{signature}",
                                     "token_invalid"),
        "alg NONE": (f"{b64({'alg': 'NONE'})}.{payload}.", "token_invalid"),
        "wrong key": (signed(claims, ATTACKER_KEY), "token_invalid"),
        "tampered payload": (f"{header}.{longer}.{signature}", "token_invalid"),
        "tampered signature": (f"{header}.{payload}.{signature[::-1]}", "token_invalid"),
        "signature dropped": (f"{header}.{payload}.", "token_invalid"),
        "expired": (ours({**claims, "exp": now - 10}), "token_expired"),
        "exp not a number": (ours({**claims, "exp": "tomorrow"}), "token_invalid"),
        "issued in the future": (ours({**claims, "iat": now + 3600}), "token_invalid"),
        "not before the future": (ours({**claims, "nbf": now + 3600}), "token_invalid"),
        "wrong issuer": (ours({**claims, "iss": "https://evil.example"}), "token_invalid"),
        "wrong audience": (ours({**claims, "aud": "another-api"}), "token_invalid"),
        "oversized": (f"{header}.{b64(b'x' * 20000)}.{signature}", "token_invalid"),
        "not a jwt": ("definitely-not-a-token", "token_invalid"),
        "non-ascii": ("\u00e9\u00e9.\u00e9\u00e9.\u00e9\u00e9", "token_invalid"),
    }
    for name, (headers, key) in header_attacks(claims).items():
        forged[name] = (signed(claims, key, **headers), "token_invalid")
    for claim in ("exp", "iat", "iss", "aud", "jti", "sub", "sid", "typ", "gen"):
        forged[f"missing {claim}"] = (ours({k: v for k, v in claims.items() if k != claim}),
                                      "token_invalid")
    return forged


@pytest.fixture
def pair(user, login):
    return login(user)


@pytest.mark.parametrize("kind, typ", [("access_token", jwt.ACCESS),
                                       ("refresh_token", jwt.REFRESH)])
def test_each_forgery_has_a_single_flaw(pair, kind, typ):
    # Undo the flaw and the service accepts the token: each forgery is refused for what it
    # tests, not for something else (another algorithm, an unknown user, a bad claim).
    claims = claims_of(pair[kind])
    assert jwt.decode(ours(claims), typ=typ) == jwt.decode(pair[kind], typ=typ)
    assert jwt.decode(ours({**claims, "exp": claims["exp"] + 86400}), typ=typ)
    for name, (headers, _) in header_attacks(claims).items():
        if "kid" in headers:
            continue  # a kid the service does not know is itself refused (test_keys.py)
        assert jwt.decode(ours(claims, **headers), typ=typ), name


def test_forged_refresh_tokens_are_refused(api, pair):
    for name, (token, code) in forgeries(pair["refresh_token"]).items():
        response = refresh(api, token)
        assert response.status_code == 401, name
        assert response.json()["code"] == code, name
    # None of them disturbed the real session.
    assert refresh(api, pair["refresh_token"]).status_code == 200


def test_forged_access_tokens_are_refused(api, pair):
    for name, (token, code) in forgeries(pair["access_token"]).items():
        response = me(api, token)
        assert response.status_code == 401, name
        assert response.json()["code"] == code, name
        assert response["WWW-Authenticate"].startswith("Bearer")


def test_forged_logouts_end_nothing(api, pair):
    for name, (token, _) in forgeries(pair["refresh_token"]).items():
        response = api.post(LOGOUT, {"refresh_token": token}, format="json")
        assert response.status_code == 204, name
    assert me(api, pair["access_token"]).status_code == 200


def test_token_types_cannot_be_swapped(api, pair):
    assert_error(refresh(api, pair["access_token"]), 401, "token_invalid")
    assert_error(me(api, pair["refresh_token"]), 401, "token_invalid")
    api.post(LOGOUT, {"refresh_token": pair["access_token"]}, format="json")
    assert me(api, pair["access_token"]).status_code == 200


def test_non_utf8_body_is_a_400(api, pair):
    response = api.generic("POST", REFRESH,
                           b'{"refresh_token": "\xff\xfe\xfd"}', content_type="application/json")
    assert_error(response, 400, "parse_error")


def test_non_ascii_bearer_header_is_a_401(api):
    response = api.get(ME, HTTP_AUTHORIZATION="Bearer \u00ff\u00fe")
    assert_error(response, 401, "token_invalid")


@pytest.mark.parametrize("make_keys, algorithm", [(rsa_pems, "RS256"), (ed25519_pems, "EdDSA")])
def test_asymmetric_algorithms_work_and_resist_confusion(api, user, login, make_keys, algorithm):
    private, public = make_keys()
    with override_settings(TOKENS={"ALGORITHM": algorithm, "SIGNING_KEY": private,
                                   "VERIFYING_KEY": public}):
        pair = login(user)
        first = refresh(api, pair["refresh_token"]).json()
        # Deterministic signatures: a racing replay gets the identical successor.
        assert refresh(api, pair["refresh_token"]).json()["refresh_token"] == first["refresh_token"]
        assert me(api, first["access_token"]).status_code == 200
        # HS/RS confusion: HMAC-signed with the public key as the secret.
        header = b64({"alg": "HS256", "typ": "JWT"})
        payload = first["access_token"].split(".")[1]
        mac = hmac.new(public, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        confused = f"{header}.{payload}.{b64(mac)}"
        assert_error(me(api, confused), 401, "token_invalid")
        # A token signed by an HMAC key is no good either.
        hmac_signed = pyjwt.encode(claims_of(first["access_token"]), b"k" * 32, algorithm="HS256")
        assert_error(me(api, hmac_signed), 401, "token_invalid")
