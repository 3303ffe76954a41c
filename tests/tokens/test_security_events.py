"""Security events in the database: one row for each rare event, none on the refresh or
authenticated path, read-only in the admin, purged after the retention."""

import io
import re
from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from django.core.management import call_command
from django.test import override_settings

from tests.helpers import (LOGOUT, LOGOUT_ALL, NEW_PASSWORD, OBTAIN, PASSWORD, REFRESH,
                           assert_error, change_password, claims_of, me, refresh)
from tokens.services import security_events
from tokens.admin.events import events_of_user_url
from tokens.models import SecurityEvent

pytestmark = pytest.mark.django_db
Kind = SecurityEvent.Kind


def events(**filters) -> list[SecurityEvent]:
    return list(SecurityEvent.objects.filter(**filters).order_by("id"))


def test_the_everyday_paths_write_nothing(api, user, login):
    pair = login(user)
    pair = refresh(api, pair["refresh_token"]).json()
    assert me(api, pair["access_token"]).status_code == 200
    assert refresh(api, pair["refresh_token"]).status_code == 200
    api.post(LOGOUT, {"refresh_token": login(user)["refresh_token"]}, format="json")
    api.post(OBTAIN, {"username": "alice", "password": "wrong"}, format="json")
    assert not events()


def test_a_reuse_is_recorded_with_the_thiefs_client_escaped(api, user, login):
    pair = login(user)
    refresh(api, pair["refresh_token"])
    with time_machine.travel(timedelta(seconds=11)):
        reply = api.post("/api/auth/token/refresh/", {"refresh_token": pair["refresh_token"]},
                         format="json", HTTP_USER_AGENT="evil\x1b[2J\u202e", REMOTE_ADDR="10.6.6.6")
        assert_error(reply, 401, "token_reused")
        assert_error(refresh(api, pair["refresh_token"]), 401, "token_reused")
    [event] = events()
    assert (event.kind, event.user, event.username) == (Kind.REUSE, user, "alice")
    assert (event.ip_address, event.user_agent) == ("10.6.6.6", "evil\\x1b[2J\\u202e")
    assert event.session_id == claims_of(pair["refresh_token"])["sid"]
    assert pair["refresh_token"] not in str(vars(event))


def test_logout_everywhere_is_recorded_with_its_count(api, user, login):
    first, _ = login(user), login(user)
    api.post(LOGOUT_ALL, HTTP_AUTHORIZATION=f"Bearer {first['access_token']}",
             REMOTE_ADDR="10.0.0.8")
    [event] = events()
    assert (event.kind, event.user, event.sessions_ended, event.ip_address) == (
        Kind.LOGOUT_ALL, user, 2, "10.0.0.8")


def test_a_password_change_is_recorded(api, user, login):
    pair = login(user)
    reply = change_password(api, pair["access_token"], REMOTE_ADDR="10.0.0.9",
                            HTTP_USER_AGENT="Firefox/140")
    assert reply.status_code == 200
    [event] = events()
    assert (event.kind, event.user, event.by) == (Kind.PASSWORD_CHANGED, user, "password change")
    # Who changed it, from where, in which session (the one that goes on).
    assert (event.ip_address, event.user_agent, event.session_id) == (
        "10.0.0.9", "Firefox/140", claims_of(pair["access_token"])["sid"])


def test_a_password_reset_is_recorded(api, user):
    from tokens.services.password_reset import reset_link

    uid, token = reset_link(user).rpartition("#")[2].split("/")  # tests/settings.py
    reply = api.post("/api/auth/password/reset/confirm/",
                     {"uid": uid, "token": token, "new_password": NEW_PASSWORD},
                     format="json", REMOTE_ADDR="10.0.0.3")
    assert reply.status_code == 204, reply.content
    [event] = events()
    assert (event.kind, event.user, event.by, event.ip_address) == (
        Kind.PASSWORD_CHANGED, user, "reset link", "10.0.0.3")


def test_revocations_by_a_command_are_recorded(user, login):
    login(user)
    call_command("revoke_sessions", "alice", stdout=io.StringIO())
    call_command("revoke_sessions", "alice", stdout=io.StringIO())  # nothing left: no event
    login(user)
    call_command("purge_tokens", "--all", "--noinput", stdout=io.StringIO())
    assert [(e.kind, e.user, e.sessions_ended, e.by) for e in events()] == [
        (Kind.REVOKED_BY_COMMAND, user, 1, "manage.py revoke_sessions"),
        (Kind.REVOKED_BY_COMMAND, None, 1, "manage.py purge_tokens --all"),
    ]


def test_revocations_by_an_admin_are_recorded(superuser_client, api, user, login):
    pair = login(user)
    sid = claims_of(pair["refresh_token"])["sid"]
    sessions = f"/admin/accounts/user/{user.pk}/sessions/"
    superuser_client.post(sessions + "revoke/", {"session": sid})
    login(user)
    superuser_client.post(sessions + "revoke-all/")
    superuser_client.post(sessions + "revoke-all/")  # nothing left: no event
    assert [(e.kind, e.session_id, e.sessions_ended, e.by) for e in events()] == [
        (Kind.REVOKED_BY_ADMIN, sid, 1, "root"), (Kind.REVOKED_BY_ADMIN, "", 1, "root")]


def fail_logins(api, username, count, **extra):
    for _ in range(count):
        api.post(OBTAIN, {"username": username, "password": "wrong"}, format="json", **extra)


@override_settings(TOKENS={"LOGIN_FAILURES_PER_IP": None})
def test_a_lockout_is_recorded_once_per_window_however_many_refusals(api, user):
    start = datetime(2030, 1, 1, 12, 0, 10, tzinfo=timezone.utc)  # mid-window, clock held
    with time_machine.travel(start, tick=False):
        fail_logins(api, "alice", 5)
        assert not events()
        fail_logins(api, "ALICE", 30, REMOTE_ADDR="10.0.0.9",  # refused: one event, not 30
                    HTTP_USER_AGENT="curl/8.5")
    [event] = events()
    assert (event.kind, event.user, event.username, event.ip_address, event.user_agent) == (
        Kind.LOCKED_OUT, user, "ALICE", "10.0.0.9", "curl/8.5")
    with time_machine.travel(start + timedelta(seconds=61), tick=False):
        fail_logins(api, "alice", 5)
        fail_logins(api, "alice", 3)
    assert len(events(kind=Kind.LOCKED_OUT)) == 2


@override_settings(TOKENS={"LOGIN_FAILURES_PER_IP": None})
def test_a_lockout_of_a_name_without_an_account_is_recorded_alike(api, db):
    fail_logins(api, "nobody", 8)
    [event] = events()
    assert (event.kind, event.user, event.username) == (Kind.LOCKED_OUT, None, "nobody")


def test_refusals_by_the_address_budget_are_no_lockout(api, user, make_user):
    for i in range(21):  # 20/m per address, across usernames
        fail_logins(api, f"user{i}", 1)
    assert_error(api.post(OBTAIN, {"username": "alice", "password": PASSWORD}, format="json"),
                 429, "throttled")
    assert not events()


def test_purge_deletes_only_events_past_the_retention(user):
    with time_machine.travel(timedelta(days=-91)):
        security_events.record(kind=Kind.REUSE, user=user)
    with time_machine.travel(timedelta(days=-89)):
        kept = security_events.record(kind=Kind.REUSE, user=user)
    out = io.StringIO()
    call_command("purge_security_events", "--dry-run", stdout=out)
    assert "Would delete 1 " in out.getvalue() and len(events()) == 2
    call_command("purge_security_events", stdout=out)
    assert events() == [kept]
    with override_settings(TOKENS={"SECURITY_EVENT_RETENTION": timedelta(days=30)}):
        assert security_events.purge() == 1
    assert not events()


def test_the_admin_lists_filters_and_searches_read_only(superuser_client, user, make_user):
    bob = make_user(username="bob")
    security_events.record(kind=Kind.REUSE, user=user, ip_address="10.1.1.1",
                           user_agent="<script>alert(1)</script>")
    security_events.record(kind=Kind.LOCKED_OUT, user=bob, ip_address="10.2.2.2")
    changelist = "/admin/tokens/securityevent/"
    page = superuser_client.get(changelist)
    assert page.status_code == 200 and page.context["cl"].result_count == 2
    times = re.findall(r'<time datetime="[^"]+">([^<]+)</time>', page.content.decode())
    assert times == [event.created_at.strftime("%Y-%m-%d %H:%M:%S UTC")
                     for event in SecurityEvent.objects.order_by("-created_at")]
    for query, expected in [("?kind__exact=reuse", "alice"), ("?q=bob", "bob"),
                            ("?q=10.1.1", "alice")]:
        result = superuser_client.get(changelist + query).context["cl"].result_list
        assert [e.username for e in result] == [expected]
    mine = superuser_client.get(events_of_user_url(bob))
    assert [e.username for e in mine.context["cl"].result_list] == ["bob"]
    event = events(user=user)[0]
    detail = superuser_client.get(f"{changelist}{event.pk}/change/")
    assert detail.status_code == 200
    assert b"<script>alert" not in detail.content and b"&lt;script&gt;" in detail.content
    assert b'name="_save"' not in detail.content  # no Save: read-only
    assert superuser_client.get(f"{changelist}add/").status_code == 403
    assert superuser_client.post(f"{changelist}{event.pk}/delete/").status_code == 403
    assert SecurityEvent.objects.count() == 2


def test_a_database_refusing_events_changes_no_answer(api, user, login, caplog):
    # A real refusal by the database (a trigger), not a mock: the reuse is still a 401 and
    # ends the session, the logout everywhere still a 204; the failure is logged.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CREATE TRIGGER refuse_events BEFORE INSERT ON tokens_securityevent "
                       "BEGIN SELECT RAISE(ABORT, 'no room for events'); END")
    try:
        with override_settings(TOKENS={"ROTATION_LEEWAY": timedelta(0)}):
            spent = login(user)["refresh_token"]
            fresh = api.post(REFRESH, {"refresh_token": spent}, format="json").json()
            assert_error(api.post(REFRESH, {"refresh_token": spent}, format="json"), 401,
                         "token_reused")
            assert_error(api.post(REFRESH, {"refresh_token": fresh["refresh_token"]},
                                  format="json"), 401, "token_reused")
            access = login(user)["access_token"]
            assert api.post(LOGOUT_ALL, HTTP_AUTHORIZATION=f"Bearer {access}").status_code == 204
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER refuse_events")
    assert "no room for events" in caplog.text
    assert not SecurityEvent.objects.exists()
