"""Forgotten passwords: a reset link by email, the same answer whether or not an account
matches, a link that works once, every session ended, and limits per address and client.

The email goes from the background thread, with its own database connection: these tests
commit their users (transaction=True) and wait for that thread after each request."""

import re

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from tests.helpers import PASSWORD, assert_error, me, redis_keys, refresh, session_keys
from tokens import background

pytestmark = pytest.mark.django_db(transaction=True)

RESET = "/api/auth/password/reset/"
CONFIRM = "/api/auth/password/reset/confirm/"
NEW = "a much better passphrase 42"
# tests/settings.py: TOKENS["PASSWORD_RESET_URL"] = "https://app.example.test/reset#{uid}/{token}"
FRONTEND = "https://app.example.test/reset#"
LINK = re.compile(r"reset#(?P<uid>[A-Za-z0-9_-]+)/(?P<token>[A-Za-z0-9-]+)")


def ask(email, ip="192.0.2.1", client=None, **headers):
    """Ask for a reset, and wait until the background thread has delivered it."""
    response = (client or APIClient()).post(RESET, {"email": email}, format="json",
                                            REMOTE_ADDR=ip, **headers)
    assert background.wait_idle(10)
    return response


def link_in(message) -> dict:
    return LINK.search(message.body).groupdict()


def confirm(link: dict, password=NEW):
    return APIClient().post(CONFIRM, {**link, "new_password": password}, format="json")


@pytest.fixture
def people(make_user):
    make_user(username="bob", email="bob@example.com", is_active=False)
    carol = make_user(username="carol", email="carol@example.com")
    carol.set_unusable_password()
    carol.save()
    return make_user(username="alice", email="alice@example.com")


def test_every_address_gets_the_same_answer_and_only_an_active_account_an_email(people,
                                                                                 mailoutbox):
    answers = [ask(email, ip=f"192.0.2.{i}") for i, email in enumerate(
        ["alice@example.com", "nobody@example.com", "bob@example.com", "carol@example.com"])]
    assert {(r.status_code, r.content) for r in answers} == {(202, answers[0].content)}
    assert [m.to for m in mailoutbox] == [["alice@example.com"]]
    body = mailoutbox[0].body
    assert "alice" in body and LINK.search(body) and FRONTEND in body


def test_the_link_sets_the_password_once_and_ends_every_session(
        people, login, api, redis_conn, mailoutbox, django_capture_on_commit_callbacks):
    before = [login(people), login(people)]
    ask("alice@example.com")
    link = link_in(mailoutbox[0])
    with django_capture_on_commit_callbacks(execute=True):
        assert confirm(link).status_code == 204
    people.refresh_from_db()
    assert people.check_password(NEW)
    assert session_keys(redis_conn, people.pk) == []
    for pair in before:
        assert_error(refresh(api, pair["refresh_token"]), 401, "session_revoked")
        assert_error(me(api, pair["access_token"]), 401, "session_revoked")
    assert_error(confirm(link, "yet another passphrase 7"), 400, "invalid_reset_link")
    people.refresh_from_db()
    assert people.check_password(NEW)


def test_a_weak_password_is_refused_and_changes_nothing(people, login, api, mailoutbox):
    pair = login(people)
    ask("alice@example.com")
    link = link_in(mailoutbox[0])
    response = confirm(link, "123")
    assert_error(response, 400, "invalid")
    assert "new_password" in response.json()["errors"]
    people.refresh_from_db()
    assert people.check_password(PASSWORD)
    assert refresh(api, pair["refresh_token"]).status_code == 200
    assert confirm(link).status_code == 204  # the link still works for a good password


@pytest.mark.parametrize("change", ["token", "uid", "other user"])
def test_an_altered_link_is_refused(people, make_user, mailoutbox, change):
    other = make_user(username="dave", email="dave@example.com")
    ask("alice@example.com")
    link = link_in(mailoutbox[0])
    if change == "token":
        link["token"] = link["token"][:-1] + ("a" if link["token"][-1] != "a" else "b")
    elif change == "uid":
        link["uid"] = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NQ"  # 25 digits: no such user
    else:
        from django.utils.http import urlsafe_base64_encode

        link["uid"] = urlsafe_base64_encode(str(other.pk).encode())
    assert_error(confirm(link), 400, "invalid_reset_link")


def test_a_link_expires(people, mailoutbox):
    import time_machine
    from datetime import timedelta

    ask("alice@example.com")
    link = link_in(mailoutbox[0])
    with time_machine.travel(timedelta(days=4)):  # PASSWORD_RESET_TIMEOUT: 3 days
        assert_error(confirm(link), 400, "invalid_reset_link")


@pytest.mark.parametrize("body", [
    {}, {"email": "not an address"}, {"email": 5}, {"email": ["a@example.com"]},
    {"email": "a" * 300 + "@example.com"},
])
def test_bad_requests_are_400s(people, body, mailoutbox):
    assert_error(APIClient().post(RESET, body, format="json"), 400, "invalid")
    assert mailoutbox == []


@pytest.mark.parametrize("body", [
    {}, {"uid": "!!", "token": "x", "new_password": NEW}, {"uid": 5, "token": [], "new_password": NEW},
    {"uid": "a" * 1000, "token": "x", "new_password": NEW},
    {"uid": "MQ", "token": "x" * 1000, "new_password": NEW},
    {"uid": "_-_-", "token": "1-2", "new_password": NEW},
])
def test_malformed_confirmations_are_400s(people, body):
    response = APIClient().post(CONFIRM, body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] in ("invalid", "invalid_reset_link")


def test_requests_per_address_are_limited_however_it_is_spelled(people, mailoutbox):
    spellings = ["alice@example.com", " Alice@Example.com ", "ALICE@EXAMPLE.COM"]
    for i, email in enumerate(spellings):
        assert ask(email, ip=f"192.0.2.{i}").status_code == 202
    response = ask("alice@example.com", ip="192.0.2.99")
    assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0
    assert len(mailoutbox) == 3


@override_settings(TOKENS={"PASSWORD_RESETS_PER_IP": "5/h"})
def test_requests_per_client_are_limited_whatever_the_address(people):
    for i in range(5):
        assert ask(f"someone{i}@example.com", ip="203.0.113.7").status_code == 202
    assert_error(ask("alice@example.com", ip="203.0.113.7"), 429, "throttled")
    assert ask("alice@example.com", ip="203.0.113.8").status_code == 202


def test_the_link_points_at_the_configured_frontend(people, mailoutbox):
    with override_settings(TOKENS={"PASSWORD_RESET_URL": "https://app.example.com/r?u={uid}&t={token}"}):
        ask("alice@example.com")
    assert "https://app.example.com/r?u=" in mailoutbox[0].body


def test_the_reset_keys_expire_and_hold_no_address(people, redis_conn):
    ask("alice@example.com")
    keys = redis_keys(redis_conn, "*throttle*")
    assert len(keys) == 2
    for key in keys:
        assert b"alice" not in key and 0 < redis_conn.ttl(key) <= 3600


def test_nothing_of_the_delivery_runs_before_the_response_is_closed(
        people, mailoutbox, background_held, django_assert_num_queries):
    # The test client closes the response, as gunicorn does before it closes the
    # connection: the lookup (a query) and the email are the background thread's alone.
    with django_assert_num_queries(0):
        response = APIClient().post(RESET, {"email": "alice@example.com"}, format="json")
    assert response.status_code == 202
    assert mailoutbox == []
    background_held.set()
    assert background.wait_idle(10)
    assert [m.to for m in mailoutbox] == [["alice@example.com"]]


def test_a_full_queue_still_answers_202_and_drops_the_email_with_a_warning(
        people, mailoutbox, background_held, caplog):
    for _ in range(background.MAX_QUEUED):
        background.defer(lambda: None, name="filler")
    response = APIClient().post(RESET, {"email": "alice@example.com"}, format="json")
    assert (response.status_code, response.json()["code"]) == (202, "reset_requested")
    assert "password reset dropped" in caplog.text and "alice" not in caplog.text
    background_held.set()
    assert background.wait_idle(10)
    assert mailoutbox == []


@pytest.mark.parametrize("headers", [
    {"HTTP_HOST": "localhost:31337"}, {"HTTP_HOST": "127.0.0.1:9"}, {"HTTP_HOST": "localhost"},
    {"HTTP_X_FORWARDED_HOST": "localhost:31337", "HTTP_X_FORWARDED_PROTO": "http"},
])
@pytest.mark.parametrize("secure_proxy", [False, True])
def test_the_link_is_the_configured_url_whatever_the_request_says(people, mailoutbox, headers,
                                                                   secure_proxy):
    proxy = {"SECURE_PROXY_SSL_HEADER": ("HTTP_X_FORWARDED_PROTO", "https"),
             "USE_X_FORWARDED_HOST": True} if secure_proxy else {}
    with override_settings(**proxy):
        assert ask("alice@example.com", **headers).status_code == 202
    [message] = mailoutbox
    [link] = re.findall(r"\S*reset#\S*", message.body)
    assert re.fullmatch(re.escape(FRONTEND) + r"[A-Za-z0-9_-]+/[A-Za-z0-9-]+", link)
    assert "localhost" not in message.body and "testserver" not in message.body


@pytest.mark.parametrize("url", [
    "/reset/{uid}/{token}", "//evil.example/reset/{uid}/{token}", "reset/{uid}/{token}",
    "ftp://app.example.test/{uid}/{token}", "https://app.example.test/reset", None, "",
    "https://app.example.test/{uid}/{token}/{other}",
])
def test_no_link_is_sent_unless_the_configured_url_is_absolute(people, mailoutbox, caplog, url):
    # Formerly a path was joined to the request's Host: `Host: localhost:31337` chose the link.
    with override_settings(TOKENS={"PASSWORD_RESET_URL": url}):
        assert ask("alice@example.com", HTTP_HOST="localhost:31337").status_code == 202
        assert ask("nobody@example.com", ip="192.0.2.2").status_code == 202
    assert mailoutbox == []
    refusals = [r.getMessage() for r in caplog.records if r.name == "tokens.services.password_reset"]
    assert len(refusals) == 2  # one for each request, account or none: the log tells nothing
    assert "PASSWORD_RESET_URL" in refusals[0] and refusals[0] == refusals[1]
    assert "localhost" not in caplog.text


@pytest.mark.parametrize("backend", ["console", "filebased"])
def test_with_debug_off_no_link_is_written_to_the_console_or_a_file(people, caplog, capsys,
                                                                     tmp_path, backend):
    with override_settings(EMAIL_BACKEND=f"django.core.mail.backends.{backend}.EmailBackend",
                           EMAIL_FILE_PATH=str(tmp_path), DEBUG=False):
        assert ask("alice@example.com").status_code == 202
    assert "reset" not in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []
    assert "would write the link" in caplog.text and "reset#" not in caplog.text


def test_with_debug_on_the_console_shows_the_link(people, capsys):
    # `make run`: the developer's own terminal.
    with override_settings(EMAIL_BACKEND="django.core.mail.backends.console.EmailBackend",
                           DEBUG=True):
        ask("alice@example.com")
    assert FRONTEND in capsys.readouterr().out


def test_the_dummy_backend_sends_nothing_and_says_so(people, caplog):
    # `make serve` without DJANGO_EMAIL_HOST.
    with override_settings(EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend"):
        ask("alice@example.com")
        ask("nobody@example.com", ip="192.0.2.2")
    refusals = [r for r in caplog.records if r.name == "tokens.services.password_reset"]
    assert [r.levelname for r in refusals] == ["ERROR", "ERROR"]
    assert "sends nothing" in refusals[0].getMessage()


def test_no_log_line_holds_the_reset_token(people, login, mailoutbox, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    login(people)
    ask("alice@example.com")
    link = link_in(mailoutbox[0])
    assert_error(confirm({**link, "token": link["token"] + "x"}), 400, "invalid_reset_link")
    assert_error(confirm(link, "123"), 400, "invalid")
    assert confirm(link).status_code == 204
    assert_error(confirm(link), 400, "invalid_reset_link")
    assert caplog.records  # the requests were logged (Django's "Bad Request" warnings) ...
    assert link["token"] not in caplog.text  # ... without the token
    assert all(link["token"] not in r.getMessage() for r in caplog.records)
