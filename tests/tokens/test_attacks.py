"""Forged, tampered and malformed tokens, on the refresh and logout endpoints and on Bearer auth:
every one answers 401 (400 for a malformed body) with the JSON error body, never a 500."""

import base64
import hashlib
import hmac
import json
import time

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from django.test import override_settings

from tests.helpers import assert_error, me, refresh
from tokens.conf import token_settings

pytestmark = pytest.mark.django_db


def b64(data: dict | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def claims_of(token: str) -> dict:
    return pyjwt.decode(token, options={"verify_signature": False})


def rsa_pems() -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _pems(key)


def ed25519_pems() -> tuple[bytes, bytes]:
    return _pems(ed25519.Ed25519PrivateKey.generate())


def _pems(key) -> tuple[bytes, bytes]:
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


ATTACKER_PRIVATE, ATTACKER_PUBLIC = rsa_pems()


def ours(claims: dict, **headers) -> str:
    """Signed with the service's own key: only the claims are wrong."""
    return pyjwt.encode(claims, token_settings.SIGNING_KEY, algorithm="HS256",
                        headers=headers or None)


def forgeries(token: str) -> dict[str, str]:
    claims = claims_of(token)
    header, payload, signature = token.split(".")
    now = int(time.time())
    attacker_jwk = json.loads(pyjwt.algorithms.RSAAlgorithm.to_jwk(
        pyjwt.algorithms.RSAAlgorithm(pyjwt.algorithms.RSAAlgorithm.SHA256)
        .prepare_key(ATTACKER_PUBLIC)))
    forged = {
        "alg none": f"{b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
        "alg None, signature kept": f"{b64({'alg': 'None'})}.{payload}.{signature}",
        "alg NONE": f"{b64({'alg': 'NONE'})}.{payload}.",
        "wrong key": pyjwt.encode(claims, b"attacker-key-" * 4, algorithm="HS256"),
        "tampered payload": f"{header}.{b64({**claims, 'sub': '999'})}.{signature}",
        "tampered signature": f"{header}.{payload}.{signature[::-1]}",
        "signature dropped": f"{header}.{payload}.",
        "expired": ours({**claims, "exp": now - 10}),
        "exp not a number": ours({**claims, "exp": "tomorrow"}),
        "issued in the future": ours({**claims, "iat": now + 3600}),
        "not before the future": ours({**claims, "nbf": now + 3600}),
        "wrong issuer": ours({**claims, "iss": "https://evil.example"}),
        "wrong audience": ours({**claims, "aud": "another-api"}),
        "jwk header, attacker key": pyjwt.encode(claims, ATTACKER_PRIVATE, algorithm="RS256",
                                                 headers={"jwk": attacker_jwk}),
        "jku header": pyjwt.encode(claims, ATTACKER_PRIVATE, algorithm="RS256",
                                   headers={"jku": "https://evil.example/jwks.json"}),
        "x5u header": pyjwt.encode(claims, ATTACKER_PRIVATE, algorithm="RS256",
                                   headers={"x5u": "https://evil.example/cert.pem"}),
        "kid header, attacker key": pyjwt.encode(claims, b"attacker-key-" * 4, algorithm="HS256",
                                                 headers={"kid": "../../dev/null"}),
        "oversized": f"{header}.{b64(b'x' * 20000)}.{signature}",
        "not a jwt": "definitely-not-a-token",
        "non-ascii": "\u00e9\u00e9.\u00e9\u00e9.\u00e9\u00e9",
    }
    for claim in ("exp", "iat", "iss", "aud", "jti", "sub", "sid", "typ", "gen"):
        forged[f"missing {claim}"] = ours({k: v for k, v in claims.items() if k != claim})
    return forged


@pytest.fixture
def pair(user, login):
    return login(user)


def test_forged_refresh_tokens_are_refused(api, pair):
    for name, token in forgeries(pair["refresh_token"]).items():
        response = refresh(api, token)
        assert response.status_code == 401, name
        assert response.json()["code"] in ("token_invalid", "token_expired"), name
    # None of them disturbed the real session.
    assert refresh(api, pair["refresh_token"]).status_code == 200


def test_forged_access_tokens_are_refused(api, pair):
    for name, token in forgeries(pair["access_token"]).items():
        response = me(api, token)
        assert response.status_code == 401, name
        assert response.json()["code"] in ("token_invalid", "token_expired"), name
        assert response["WWW-Authenticate"].startswith("Bearer")


def test_forged_logouts_end_nothing(api, pair):
    for name, token in forgeries(pair["refresh_token"]).items():
        response = api.post("/api/auth/logout/", {"refresh_token": token}, format="json")
        assert response.status_code == 204, name
    assert me(api, pair["access_token"]).status_code == 200


def test_token_types_cannot_be_swapped(api, pair):
    assert_error(refresh(api, pair["access_token"]), 401, "token_invalid")
    assert_error(me(api, pair["refresh_token"]), 401, "token_invalid")
    api.post("/api/auth/logout/", {"refresh_token": pair["access_token"]}, format="json")
    assert me(api, pair["access_token"]).status_code == 200


def test_non_utf8_body_is_a_400(api, pair):
    response = api.generic("POST", "/api/auth/token/refresh/",
                           b'{"refresh_token": "\xff\xfe\xfd"}', content_type="application/json")
    assert_error(response, 400, "parse_error")


def test_non_ascii_bearer_header_is_a_401(api):
    response = api.get("/api/auth/me/", HTTP_AUTHORIZATION="Bearer \u00ff\u00fe")
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
