"""Rotating signing keys without logging anyone out: key ids, fallbacks that still verify,
session fingerprints re-stamped under the new key, and the published JWKS."""

import io
import logging
import warnings
from datetime import timedelta

import jwt as pyjwt
import pytest
import time_machine
from django.core.management import call_command
from django.test import override_settings
from rest_framework.test import APIClient

from tests.helpers import (
    LOGOUT, OBTAIN, PASSWORD, SESSIONS, assert_error, change_password, claims_of, ed25519_pems,
    me, refresh, rsa_pems, session_record,
)
from tests.tokens.test_checks import asymmetric_settings
from tokens import jwt as tokens_jwt
from tokens import users
from tokens.signing_keys import hmac_kid, keyset

pytestmark = pytest.mark.django_db

A = "secret-key-A-" + "a" * 50
B = "secret-key-B-" + "b" * 50


def header(token: str) -> dict:
    return pyjwt.get_unverified_header(token)


def test_every_token_names_its_key_without_revealing_it(user, login):
    pair = login(user)
    for token in (pair["access_token"], pair["refresh_token"]):
        kid = header(token)["kid"]
        assert kid == keyset().current_kid == hmac_kid(keyset().signing_key)
        assert kid not in keyset().signing_key.hex()


def test_a_secret_key_rotation_logs_no_one_out(api, user, login, redis_conn):
    with override_settings(SECRET_KEY=A):
        pair, idle = login(user), login(user)
        stamped = session_record(redis_conn, pair["refresh_token"])["fp"]
    with override_settings(SECRET_KEY=B, SECRET_KEY_FALLBACKS=[A]):
        assert me(api, pair["access_token"]).status_code == 200
        auth = {"HTTP_AUTHORIZATION": f"Bearer {pair['access_token']}"}
        assert len(api.get(SESSIONS, **auth).json()) == 2
        new = refresh(api, pair["refresh_token"]).json()
        assert header(new["refresh_token"])["kid"] == keyset().current_kid  # signed under B
        record = session_record(redis_conn, new["refresh_token"])
        assert record["fp"] != stamped and record["fp"] == users.fingerprint(user.password)
        changed = change_password(api, new["access_token"])
        assert changed.status_code == 200
        assert api.post(LOGOUT, {"refresh_token": changed.json()["refresh_token"]},
                        format="json").status_code == 204
    with override_settings(SECRET_KEY=B):  # A retired: what was not refreshed since is dead
        assert_error(refresh(api, idle["refresh_token"]), 401, "token_invalid")


def test_once_the_old_key_is_removed_a_refreshed_session_goes_on(api, user, login):
    with override_settings(SECRET_KEY=A):
        pair, idle = login(user), login(user)
    with override_settings(SECRET_KEY=B, SECRET_KEY_FALLBACKS=[A]):
        pair = refresh(api, pair["refresh_token"]).json()
    with override_settings(SECRET_KEY=B):
        assert refresh(api, pair["refresh_token"]).status_code == 200
        assert me(api, pair["access_token"]).status_code == 200
        assert_error(me(api, idle["access_token"]), 401, "token_invalid")


def test_a_new_key_announced_as_a_fallback_first_verifies_before_it_signs(api, user, login):
    # Step one of a rolling rotation: some processes already know B (as a fallback) while
    # the others still sign with A; then B signs, A verifies.
    with override_settings(SECRET_KEY=A, SECRET_KEY_FALLBACKS=[B]):
        pair = login(user)
        assert header(pair["access_token"])["kid"] == hmac_kid(keyset().signing_key)
    with override_settings(SECRET_KEY=B, SECRET_KEY_FALLBACKS=[A]):
        pair = refresh(api, pair["refresh_token"]).json()
    with override_settings(SECRET_KEY=A, SECRET_KEY_FALLBACKS=[B]):  # a process not yet moved
        assert me(api, pair["access_token"]).status_code == 200
        assert refresh(api, pair["refresh_token"]).status_code == 200


@pytest.fixture
def fresh_reports(monkeypatch):
    """No unknown key id reported yet in this process (earlier tests reported some)."""
    monkeypatch.setattr(tokens_jwt, "_reports", tokens_jwt._Reports())


def unknown_key_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "tokens.jwt" and "unknown key" in r.getMessage()]


def test_an_unknown_key_id_is_refused_and_said_once(api, user, login, caplog, fresh_reports):
    with override_settings(SECRET_KEY=A):
        pair = login(user)
    with override_settings(SECRET_KEY=B), caplog.at_level(logging.WARNING, logger="tokens"):
        for _ in range(3):
            assert_error(me(api, pair["access_token"]), 401, "token_invalid")
            assert_error(refresh(api, pair["refresh_token"]), 401, "token_invalid")
    warnings = unknown_key_lines(caplog)
    assert len(warnings) == 1 and "SECRET_KEY" in warnings[0]


def test_tokens_naming_ever_new_key_ids_cannot_flood_the_log(api, user, login, caplog,
                                                             fresh_reports):
    # One line per id and interval was a line per request for anyone sending a new `kid`
    # each time: the lines per interval are bounded in all.
    claims = claims_of(login(user)["access_token"])
    budget = tokens_jwt.REPORT_BUDGET

    def forged(kid: str) -> str:
        return pyjwt.encode(claims, "another-key-of-at-least-32-bytes!", algorithm="HS256",
                            headers={"kid": kid})

    with caplog.at_level(logging.WARNING, logger="tokens"):
        for i in range(20 * budget):
            assert_error(me(api, forged(f"kid-{i}")), 401, "token_invalid")
        assert_error(me(api, forged("k" * 65)), 401, "token_invalid")  # a malformed id too
        assert_error(refresh(api, forged("kid-x")), 401, "token_invalid")
        lines = unknown_key_lines(caplog)
        assert len(lines) == budget + 1
        assert all(f"kid='kid-{i}'" in line for i, line in enumerate(lines[:budget]))
        assert "refused without a line each" in lines[-1]
        assert len(tokens_jwt._reports.kids) == budget  # memory stays bounded too
        caplog.clear()
        with time_machine.travel(timedelta(seconds=tokens_jwt.REPORT_EVERY_SECONDS + 1)):
            assert_error(me(api, forged("kid-0")), 401, "token_invalid")
            assert_error(me(api, forged("kid-0")), 401, "token_invalid")
        summary, again = unknown_key_lines(caplog)
    unreported = 20 * budget + 2 - budget  # every id sent, the malformed one and kid-x too
    assert summary.startswith(f"{unreported} more tokens signed with unknown keys")
    assert summary.endswith("+00:00.")  # the interval's start, in UTC and saying so
    assert "kid='kid-0'" in again  # a new interval: said once again


@pytest.mark.parametrize("kid, said", [
    ("k" * 64, "k" * 64),  # the longest id the log repeats as sent
    ("k" * 65, "(malformed)"),  # one longer: not repeated
    ("kid\nWARNING forged line", "(malformed)"),  # not printable: not repeated either
])
def test_an_unknown_key_id_is_said_as_sent_only_when_short_and_printable(
        api, user, login, caplog, fresh_reports, kid, said):
    claims = claims_of(login(user)["access_token"])
    forged = pyjwt.encode(claims, "another-key-of-at-least-32-bytes!", algorithm="HS256",
                          headers={"kid": kid})
    with caplog.at_level(logging.WARNING, logger="tokens"):
        assert_error(me(api, forged), 401, "token_invalid")
    lines = unknown_key_lines(caplog)
    assert len(lines) == 1 and f"(kid={said!r})" in lines[0]


def test_a_token_from_before_key_ids_still_verifies(api, user, login):
    pair = login(user)
    claims = claims_of(pair["access_token"])
    legacy = pyjwt.encode(claims, keyset().signing_key, algorithm="HS256")
    assert "kid" not in header(legacy)
    assert me(api, legacy).status_code == 200


@pytest.mark.parametrize("kid", ["another-key", "", "k" * 64])
def test_a_token_signed_with_our_key_but_naming_another_is_refused(api, user, login, kid):
    # The key id names the key a token was signed with; one that names another (or is no
    # id at all) is refused even though the signature checks out with the one key in force.
    claims = claims_of(login(user)["access_token"])
    assert len(keyset().verifying_keys) == 1
    misnamed = pyjwt.encode(claims, keyset().signing_key, algorithm="HS256",
                            headers={"kid": kid})
    assert_error(me(api, misnamed), 401, "token_invalid")


def test_the_algorithm_stays_pinned_whatever_the_key_id(api, user, login):
    pair = login(user)
    claims = claims_of(pair["access_token"])
    other = pyjwt.encode(claims, keyset().signing_key, algorithm="HS512",
                         headers={"kid": keyset().current_kid})
    assert_error(me(api, other), 401, "token_invalid")


def test_an_explicit_signing_key_has_its_own_fallbacks(api, user, login):
    old, new = "k" * 40, "n" * 40
    with override_settings(TOKENS={"SIGNING_KEY": old}):
        pair = login(user)
    with override_settings(TOKENS={"SIGNING_KEY": new, "SIGNING_KEY_FALLBACKS": [old]}):
        assert me(api, pair["access_token"]).status_code == 200
        assert refresh(api, pair["refresh_token"]).status_code == 200
    with override_settings(TOKENS={"SIGNING_KEY": new}):
        assert_error(me(api, pair["access_token"]), 401, "token_invalid")


@pytest.mark.parametrize("make_keys, algorithm", [(rsa_pems, "RS256"), (ed25519_pems, "EdDSA")])
def test_an_asymmetric_key_rotation_logs_no_one_out(api, user, login, make_keys, algorithm):
    (private1, public1), (private2, public2) = make_keys(), make_keys()
    first = {"ALGORITHM": algorithm, "SIGNING_KEY": private1, "VERIFYING_KEY": public1}
    with override_settings(TOKENS=first):
        pair = login(user)
    second = {"ALGORITHM": algorithm, "SIGNING_KEY": private2, "VERIFYING_KEY": public2,
              "VERIFYING_KEY_FALLBACKS": [public1]}
    with override_settings(TOKENS=second):
        assert me(api, pair["access_token"]).status_code == 200
        new = refresh(api, pair["refresh_token"]).json()
        assert header(new["access_token"])["kid"] != header(pair["access_token"])["kid"]
        assert me(api, new["access_token"]).status_code == 200


def test_purge_keeps_sessions_stamped_under_a_fallback_key(api, user, login):
    with override_settings(SECRET_KEY=A):
        pair = login(user)
    with override_settings(SECRET_KEY=B, SECRET_KEY_FALLBACKS=[A]):
        call_command("purge_tokens", stdout=io.StringIO(), stderr=io.StringIO())
        assert refresh(api, pair["refresh_token"]).status_code == 200


def test_a_rehash_during_a_rotation_keeps_sessions_stamped_under_the_old_key(api, user, login):
    hashers = ["tests.hashers.PBKDF2Before", "django.contrib.auth.hashers.MD5PasswordHasher"]
    with override_settings(SECRET_KEY=A, PASSWORD_HASHERS=hashers):
        pair = login(user)  # re-hashed from MD5 to PBKDF2 here, stamped under A
    with override_settings(SECRET_KEY=B, SECRET_KEY_FALLBACKS=[A],
                           PASSWORD_HASHERS=["tests.hashers.PBKDF2After"]):
        login(user)  # re-hashed again, under B
        assert refresh(api, pair["refresh_token"]).status_code == 200


def test_a_known_device_stays_known_through_a_rotation(user):
    device = APIClient()
    with override_settings(SECRET_KEY=A):
        assert device.post("/api/auth/token/", {"username": "alice", "password": PASSWORD},
                           format="json").status_code == 200
    with override_settings(SECRET_KEY=B, SECRET_KEY_FALLBACKS=[A]):
        for i in range(5):
            APIClient().post("/api/auth/token/", {"username": "alice", "password": "no"},
                             format="json", REMOTE_ADDR=f"198.51.100.{i}")
        assert device.post("/api/auth/token/", {"username": "alice", "password": PASSWORD},
                           format="json").status_code == 200


# --- JWKS ---

def test_with_hmac_the_key_set_is_empty(api):
    for path in ("/api/auth/jwks/", "/.well-known/jwks.json"):
        response = api.get(path)
        assert response.status_code == 200 and response.json() == {"keys": []}


def test_the_key_set_publishes_public_keys_only(api):
    (_, public1), (private2, public2) = rsa_pems(), rsa_pems()
    tokens = {"ALGORITHM": "RS256", "SIGNING_KEY": private2, "VERIFYING_KEY": public2,
              "VERIFYING_KEY_FALLBACKS": [public1]}
    with override_settings(TOKENS=tokens):
        response = api.get("/.well-known/jwks.json")
    keys = response.json()["keys"]
    assert [k["kid"] for k in keys][0] == keyset_kid(tokens)
    assert len(keys) == 2 and all(set(k) == {"kty", "n", "e", "kid", "alg", "use"} for k in keys)
    assert all(k["alg"] == "RS256" and k["use"] == "sig" for k in keys)
    assert "max-age" in response["Cache-Control"]
    assert b"PRIVATE" not in response.content and private2.split(b"\n")[1][:20] not in response.content


def keyset_kid(tokens: dict) -> str:
    with override_settings(TOKENS=tokens):
        return keyset().current_kid


@pytest.mark.django_db(transaction=True)
def test_another_service_verifies_access_tokens_with_pyjwkclient(live_server, user):
    private, public = rsa_pems()
    tokens = {"ALGORITHM": "RS256", "SIGNING_KEY": private, "VERIFYING_KEY": public}
    with override_settings(TOKENS=tokens):
        access = APIClient().post("/api/auth/token/", {"username": "alice", "password": PASSWORD},
                                  format="json").json()["access_token"]
        client = pyjwt.PyJWKClient(f"{live_server.url}/.well-known/jwks.json")
        signing_key = client.get_signing_key_from_jwt(access)
        claims = pyjwt.decode(access, signing_key.key, algorithms=["RS256"],
                              audience="django-token-service-api")
    assert claims["sub"] == str(user.pk) and claims["typ"] == "access"


def test_signing_keys_tells_which_keys_are_in_use_and_what_they_stamp(api, user, login):
    with override_settings(SECRET_KEY=A):
        pair = login(user)
        login(user)
    with override_settings(SECRET_KEY=B, SECRET_KEY_FALLBACKS=[A]):
        refresh(api, pair["refresh_token"])  # re-stamped under B
        login(user)
        out = io.StringIO()
        call_command("signing_keys", stdout=out)
        text = out.getvalue()
        assert "Algorithm: HS256" in text
        assert f"Signing key id: {keyset().current_kid}" in text
        assert "Fallback key id (verifies only): " in text
        assert "Sessions stamped under the current key: 2" in text
        assert "Sessions stamped under fallback 1: 1" in text
        assert "Sessions no key recognises (purge_tokens removes them): 0" in text


def test_duplicated_or_piled_up_fallbacks_are_warned_about():
    from tokens.checks import check_signing_keys

    with override_settings(SECRET_KEY=B):
        assert check_signing_keys() == []
    with override_settings(SECRET_KEY=B, SECRET_KEY_FALLBACKS=[A, B]):
        assert [w.id for w in check_signing_keys()] == ["tokens.W006"]
    with override_settings(SECRET_KEY=B, SECRET_KEY_FALLBACKS=[A + str(i) for i in range(4)]):
        assert [w.id for w in check_signing_keys()] == ["tokens.W007"]



# --- Keys that cannot sign or verify, at run time (checks do not run under gunicorn) ---

@pytest.mark.parametrize("make_keys, algorithm", [(rsa_pems, "RS256"), (ed25519_pems, "EdDSA")])
@pytest.mark.parametrize("mistake", ["private key as VERIFYING_KEY", "private key as a fallback",
                                     "public key as SIGNING_KEY", "no key as a fallback",
                                     "the other key as VERIFYING_KEY", "a string of fallbacks"])
def test_misconfigured_asymmetric_keys_are_a_503_and_said(api, user, login, caplog, make_keys,
                                                           algorithm, mistake):
    # A private key as VERIFYING_KEY was a 500 on every me and refresh; a mismatched pair
    # handed out tokens no one could use. A 503 is no logout: the client keeps its tokens,
    # and its session goes on once the keys are fixed.
    pairs = make_keys(), make_keys()
    with override_settings(TOKENS=asymmetric_settings(pairs, algorithm, "none")):
        pair = login(user)
    with override_settings(TOKENS=asymmetric_settings(pairs, algorithm, mistake)):
        replies = [me(api, pair["access_token"]), refresh(api, pair["refresh_token"]),
                   api.post(OBTAIN, {"username": "alice", "password": PASSWORD}, format="json"),
                   api.get("/.well-known/jwks.json")]
    for reply in replies:
        assert_error(reply, 503, "token_keys_misconfigured")
    lines = [r.getMessage() for r in caplog.records if "keys misconfigured" in r.getMessage()]
    assert lines and all("TOKENS[" in line and "KEY-----" not in line for line in lines)
    with override_settings(TOKENS=asymmetric_settings(pairs, algorithm, "none")):
        assert me(api, pair["access_token"]).status_code == 200
        assert refresh(api, pair["refresh_token"]).status_code == 200


def test_hmac_fallbacks_given_as_a_string_are_refused_not_split_into_one_byte_keys(api, user,
                                                                                   login):
    # Iterated, the string made each of its characters a fallback key: a token signed with
    # the one-byte key "k" (and naming it) verified.
    key = "a-signing-key-of-at-least-32-bytes!"
    with override_settings(TOKENS={"SIGNING_KEY": key}):
        claims = claims_of(login(user)["access_token"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pyjwt.warnings.InsecureKeyLengthWarning)
        forged = pyjwt.encode(claims, b"k", algorithm="HS256", headers={"kid": hmac_kid(b"k")})
    with override_settings(TOKENS={"SIGNING_KEY": key, "SIGNING_KEY_FALLBACKS": "k" * 40}):
        assert_error(me(api, forged), 503, "token_keys_misconfigured")
