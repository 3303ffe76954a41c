"""The guard against silent token stores: system checks, and the store's runtime refusal."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from tests.helpers import OBTAIN, PASSWORD, ed25519_pems, rsa_pems
from tokens.checks import check_password_reset, check_token_cache, check_token_settings

LOCMEM = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
DUMMY = {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}
FILES = {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": "/tmp/x"}


def redis_cache(**options):
    return {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": options}


def ids(errors):
    return [e.id for e in errors]


def test_the_project_settings_pass():
    assert check_token_cache() == []
    assert check_token_settings() == []


@pytest.mark.parametrize(
    "caches, tokens, expected",
    [
        ({"default": redis_cache()}, {"CACHE_ALIAS": "tokens"}, "tokens.E001"),
        ({"default": LOCMEM}, {}, "tokens.E002"),
        ({"default": DUMMY}, {}, "tokens.E003"),
        ({"default": redis_cache(IGNORE_EXCEPTIONS=True)}, {}, "tokens.E004"),
        ({"default": FILES}, {}, "tokens.E005"),
        ({"default": {"BACKEND": "no.such.Backend"}}, {}, "tokens.E018"),
        ({"default": redis_cache(), "tokens": LOCMEM}, {"CACHE_ALIAS": "tokens"}, "tokens.E002"),
    ],
)
def test_silent_or_missing_token_stores_are_errors(caches, tokens, expected):
    with override_settings(CACHES=caches, TOKENS=tokens):
        errors = check_token_cache()
    assert ids(errors) == [expected]
    assert errors[0].hint


@override_settings(DJANGO_REDIS_IGNORE_EXCEPTIONS=True)
def test_global_ignore_exceptions_is_an_error():
    assert ids(check_token_cache()) == ["tokens.E004"]


def test_a_separate_redis_alias_for_tokens_is_fine():
    with override_settings(CACHES={"default": LOCMEM, "tokens": redis_cache()},
                           TOKENS={"CACHE_ALIAS": "tokens"}):
        assert check_token_cache() == []


def test_manage_py_check_fails_on_locmem():
    with override_settings(CACHES={"default": LOCMEM}):
        with pytest.raises(SystemCheckError, match="tokens.E002"):
            call_command("check")


@pytest.mark.parametrize(
    "tokens, expected",
    [
        ({"REFRESH_LIFETIME": timedelta(days=1)}, "tokens.E006"),
        ({"ACCESS_TOKEN_LIFETIME": 300}, "tokens.E007"),
        ({"ROTATION_LEEWAY": timedelta(seconds=-1)}, "tokens.E007"),
        ({"ALGORITHM": "ES256"}, "tokens.E008"),
        ({"ALGORITHM": "RS256"}, "tokens.E010"),
        ({"ALGORITHM": "EdDSA", "SIGNING_KEY": "not a key", "VERIFYING_KEY": "nor"}, "tokens.E019"),
        ({"LOGIN_FAILURES_PER_IP": "often"}, "tokens.E011"),
        ({"LOGIN_FAILURES_PER_USERNAME": "5/fortnight"}, "tokens.E011"),
        ({"LOGIN_FAILURES_PER_USERNAME": "0/m"}, "tokens.E011"),
        ({"LOGIN_FAILURES_PER_IP": "-3/m"}, "tokens.E011"),
        ({"LOGIN_FAILURES_PER_DEVICE": "5"}, "tokens.E011"),
        ({"ALGORITHM": "none"}, "tokens.E008"),
        ({"SIGNING_KEY": "short"}, "tokens.E009"),
        ({"ALGORITHM": "HS512", "SIGNING_KEY": "k" * 40}, "tokens.E009"),
    ],
)
def test_bad_token_settings_are_errors(tokens, expected):
    with override_settings(TOKENS=tokens):
        assert set(ids(check_token_settings())) == {expected}  # one per bad key


def asymmetric_settings(pairs: tuple, algorithm: str, mistake: str) -> dict:
    """TOKENS for RS256 or EdDSA from two key pairs (current, retired), with one mistake."""
    (private, public), (old_private, old_public) = pairs
    good = {"ALGORITHM": algorithm, "SIGNING_KEY": private, "VERIFYING_KEY": public,
            "VERIFYING_KEY_FALLBACKS": [old_public]}
    return {**good, **{
        "none": {},
        "private key as VERIFYING_KEY": {"VERIFYING_KEY": private},
        "private key as a fallback": {"VERIFYING_KEY_FALLBACKS": [old_public, old_private]},
        "no key as a fallback": {"VERIFYING_KEY_FALLBACKS": [b"-----BEGIN PUBLIC KEY-----"]},
        "a number as a fallback": {"VERIFYING_KEY_FALLBACKS": [42]},
        "public key as SIGNING_KEY": {"SIGNING_KEY": public},
        "the other key as VERIFYING_KEY": {"VERIFYING_KEY": old_public},
        "a string of fallbacks": {"VERIFYING_KEY_FALLBACKS": old_public.decode()},
    }[mistake]}


KEY_MISTAKES = {
    "private key as VERIFYING_KEY": ["tokens.E019"],
    "private key as a fallback": ["tokens.E022"],
    "no key as a fallback": ["tokens.E022"],
    "a number as a fallback": ["tokens.E017"],
    "public key as SIGNING_KEY": ["tokens.E019"],
    "the other key as VERIFYING_KEY": ["tokens.E016"],
    "a string of fallbacks": ["tokens.E017"],
}


@pytest.mark.parametrize("make_keys, algorithm", [(rsa_pems, "RS256"), (ed25519_pems, "EdDSA")])
@pytest.mark.parametrize("mistake", KEY_MISTAKES)
def test_a_key_of_the_wrong_kind_or_pair_is_a_check_error(make_keys, algorithm, mistake):
    # A private key as VERIFYING_KEY passed `check`, then every me and refresh was a 500.
    with override_settings(TOKENS=asymmetric_settings((make_keys(), make_keys()), algorithm,
                                                      mistake)):
        errors = check_token_settings()
        with pytest.raises(SystemCheckError, match=KEY_MISTAKES[mistake][0]):
            call_command("check")
    assert ids(errors) == KEY_MISTAKES[mistake]
    assert all(error.hint for error in errors)
    assert "PRIVATE KEY" not in str(errors) and "PUBLIC KEY" not in str(errors)


@pytest.mark.parametrize("make_keys, algorithm", [(rsa_pems, "RS256"), (ed25519_pems, "EdDSA")])
def test_well_configured_asymmetric_keys_pass(make_keys, algorithm):
    with override_settings(TOKENS=asymmetric_settings((make_keys(), make_keys()), algorithm,
                                                      "none")):
        assert check_token_settings() == []


@pytest.mark.parametrize("fallbacks, expected", [
    ("an-old-signing-key-of-at-least-32-bytes", ["tokens.E017"]),
    (["short"], ["tokens.E023"]),
    (["an-old-signing-key-of-at-least-32-bytes"], []),
])
def test_hmac_fallbacks_are_a_list_of_long_keys(fallbacks, expected):
    # A string was iterated: each of its characters a one-byte key that verified tokens.
    tokens = {"SIGNING_KEY": "a-signing-key-of-at-least-32-bytes!",
              "SIGNING_KEY_FALLBACKS": fallbacks}
    with override_settings(TOKENS=tokens):
        errors = check_token_settings()
    assert ids(errors) == expected
    assert all(error.hint for error in errors)


@pytest.mark.django_db
@pytest.mark.parametrize("cache", [LOCMEM, DUMMY, redis_cache(IGNORE_EXCEPTIONS=True)])
def test_store_refuses_a_silent_cache_at_runtime(api, user, cache, caplog):
    # Checks do not run under gunicorn and can be silenced: the store refuses by itself.
    with override_settings(CACHES={"default": cache}):
        response = api.post(OBTAIN, {"username": "alice", "password": PASSWORD}, format="json")
        assert response.status_code == 503
        assert response.json()["code"] == "token_store_unavailable"
        if cache is LOCMEM:
            from django.core.cache import caches

            assert not caches["default"]._cache  # nothing was stored in it
    assert "misconfigured" in caplog.text


SMTP = "django.core.mail.backends.smtp.EmailBackend"
FRONTEND = "https://app.example.test/reset#{uid}/{token}"


def reset_check(url=FRONTEND, backend=SMTP, debug=False):
    with override_settings(TOKENS={"PASSWORD_RESET_URL": url}, EMAIL_BACKEND=backend,
                           DEBUG=debug, ALLOWED_HOSTS=["api.example.test", ".example.org"]):
        return check_password_reset()


@pytest.mark.parametrize("url", [
    FRONTEND, "http://127.0.0.1:8000/demo/#reset={uid}/{token}",
    "https://app.example.test/reset/{uid}/{token}", "https://api.example.test/reset#{token}/{uid}",
])
def test_an_absolute_reset_url_and_smtp_pass(url):
    assert reset_check(url) == []


@pytest.mark.parametrize("url", [
    "/reset/{uid}/{token}", "reset/{uid}/{token}", "//app.example.test/{uid}/{token}",
    "ftp://app.example.test/{uid}/{token}", "https:///{uid}/{token}",
    "https://app.example.test/reset/{token}", "https://app.example.test/{uid}/{token}/{x}",
    "https://app.example.test/{uid}/{token}/{0}", 42,
])
def test_a_reset_url_that_cannot_make_an_absolute_link_is_an_error(url):
    errors = reset_check(url)
    assert ids(errors) == ["tokens.E020"]
    assert "#{uid}/{token}" in errors[0].hint


@pytest.mark.parametrize("url", [None, ""])
def test_no_reset_url_is_a_warning(url):
    assert ids(reset_check(url)) == ["tokens.W021"]


@pytest.mark.parametrize("url", [
    "https://api.example.test/reset/{uid}/{token}", "http://api.example.test/r?u={uid}&t={token}",
    "https://api.example.test/reset/{token}#{uid}", "https://www.example.org/{uid}/{token}",
])
def test_a_token_outside_the_fragment_to_this_service_is_a_warning(url):
    # The access log (and Django's "Not Found" warning) would record it.
    assert ids(reset_check(url)) == ["tokens.W022"]


@pytest.mark.parametrize("backend", ["console", "filebased", "locmem"])
def test_with_debug_off_an_email_backend_that_keeps_the_link_is_an_error(backend):
    errors = reset_check(backend=f"django.core.mail.backends.{backend}.EmailBackend")
    assert ids(errors) == ["tokens.E021"]
    assert "DJANGO_EMAIL_HOST" in errors[0].hint
    assert reset_check(backend=f"django.core.mail.backends.{backend}.EmailBackend",
                       debug=True) == []


@pytest.mark.parametrize("debug", [False, True])
def test_the_dummy_email_backend_is_a_warning(debug):
    assert ids(reset_check(backend="django.core.mail.backends.dummy.EmailBackend",
                           debug=debug)) == ["tokens.W020"]


def test_manage_py_check_fails_on_the_console_email_backend_with_debug_off():
    with override_settings(EMAIL_BACKEND="django.core.mail.backends.console.EmailBackend",
                           DEBUG=False):
        with pytest.raises(SystemCheckError, match="tokens.E021"):
            call_command("check")
