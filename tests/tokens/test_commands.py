"""manage.py list_sessions, revoke_sessions and purge_tokens, against the real Redis."""

import io
import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from tests.helpers import assert_error, refresh, unreachable_caches

pytestmark = pytest.mark.django_db

# What must never reach an operator's terminal raw: C0/C1 controls and Unicode bidi controls.
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def run(*args, **options) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO(), **options)
    return out.getvalue()


def session_keys(redis_conn):
    return [k for k in redis_conn.scan_iter(count=1000) if b":s:" in k]


def test_list_sessions_prints_a_table(user, login):
    login(user, HTTP_USER_AGENT="Firefox/140", REMOTE_ADDR="10.0.0.7")
    login(user, HTTP_USER_AGENT="curl/8")
    lines = run("list_sessions", "alice").splitlines()
    assert lines[0].split()[:3] == ["ID", "CREATED", "LAST"]
    assert len(lines) == 3
    assert any("Firefox/140" in line and "10.0.0.7" in line for line in lines)


def test_list_sessions_shows_control_and_bidi_characters_as_escapes(user, login):
    # Clear the screen, set the window title, then reverse the rest of the line; escaped, it
    # still fits the command's 40-character column.
    login(user, HTTP_USER_AGENT="\x1b[2J\x1b]0;x\x07\x9b\u202eevil\u2066",
          REMOTE_ADDR="10.0.0.7\x1b[8m")
    out = run("list_sessions", "alice")
    assert not UNSAFE.search(out.replace("\n", ""))
    assert "\\x1b[2J\\x1b]0;x\\x07\\x9b\\u202eevil\\u2066" in out


def test_list_sessions_without_sessions(user):
    assert "no live sessions" in run("list_sessions", "alice")


@pytest.mark.parametrize("command", ["list_sessions", "revoke_sessions"])
def test_unknown_user_is_a_one_line_error(command):
    with pytest.raises(CommandError, match="No user named 'nobody'"):
        run(command, "nobody")


def test_revoke_sessions_ends_all_of_a_users_sessions(api, user, make_user, login):
    pairs = [login(user), login(user)]
    bob = login(make_user(username="bob"))
    assert "Revoked 2 session(s) of alice" in run("revoke_sessions", "alice")
    for pair in pairs:
        assert_error(refresh(api, pair["refresh_token"]), 401, "session_revoked")
    assert refresh(api, bob["refresh_token"]).status_code == 200


def test_revoke_sessions_can_end_just_one(api, user, login, redis_conn):
    first, second = login(user), login(user)
    first_id = api.get("/api/auth/sessions/",
                       HTTP_AUTHORIZATION=f"Bearer {first['access_token']}").json()
    first_id = next(s["id"] for s in first_id if s["current"])
    assert "Revoked 1 session(s)" in run("revoke_sessions", "alice", session=first_id)
    assert_error(refresh(api, first["refresh_token"]), 401, "session_revoked")
    assert refresh(api, second["refresh_token"]).status_code == 200
    with pytest.raises(CommandError, match="no live session"):
        run("revoke_sessions", "alice", session=first_id)


def test_commands_report_an_outage_as_an_error(user):
    with override_settings(CACHES=unreachable_caches()):
        with pytest.raises(CommandError, match="unavailable"):
            run("list_sessions", "alice")


def test_purge_removes_sessions_of_deleted_users_and_old_passwords(
    api, user, make_user, login, redis_conn, django_capture_on_commit_callbacks
):
    keep = login(user)
    bob, carol = make_user(username="bob"), make_user(username="carol")
    login(bob), login(carol)
    # Deleted and changed behind the app's back, so no hook ran.
    type(bob).objects.filter(pk=bob.pk)._raw_delete(using="default")
    type(carol).objects.filter(pk=carol.pk).update(password="changed-elsewhere")
    assert len(session_keys(redis_conn)) == 3

    dry = run("purge_tokens", "--dry-run")
    assert "Would remove 2 dead session(s)" in dry
    assert len(session_keys(redis_conn)) == 3

    out = run("purge_tokens", "--batch-size", "2")
    assert "Removed 2 dead session(s)" in out
    assert len(session_keys(redis_conn)) == 1
    assert refresh(api, keep["refresh_token"]).status_code == 200
    assert "Removed 0 dead session(s) and 0 stale" in run("purge_tokens")


def test_purge_drops_index_entries_of_ended_sessions(user, login, redis_conn):
    login(user), login(user)
    for key in session_keys(redis_conn):
        redis_conn.delete(key)
    assert "2 stale index entries" in run("purge_tokens")
    assert list(redis_conn.scan_iter()) == []


def test_purge_restores_a_lost_expiry(user, login, redis_conn):
    login(user)
    (key,) = session_keys(redis_conn)
    redis_conn.persist(key)
    assert "restored 1 missing expiries" in run("purge_tokens")
    assert redis_conn.ttl(key) > 29 * 86400


def test_purge_never_touches_keys_outside_the_token_store(user, login, redis_conn):
    login(user)
    redis_conn.set("someone-else:key", "value")
    redis_conn.set(":1:tokens-not-ours", "value")
    run("purge_tokens")
    call_command("purge_tokens", "--all", "--noinput", stdout=io.StringIO())
    assert redis_conn.get("someone-else:key") == b"value"
    assert redis_conn.get(":1:tokens-not-ours") == b"value"


def test_purge_all_ends_every_session(api, user, make_user, login):
    pairs = [login(user), login(make_user(username="bob"))]
    assert "Ended 2 session(s)" in run("purge_tokens", "--all", "--noinput")
    for pair in pairs:
        assert_error(refresh(api, pair["refresh_token"]), 401, "session_revoked")


def test_purge_all_asks_first(api, user, login, monkeypatch):
    pair = login(user)
    monkeypatch.setattr("builtins.input", lambda prompt: "no")
    with pytest.raises(CommandError, match="Cancelled"):
        run("purge_tokens", "--all")
    assert refresh(api, pair["refresh_token"]).status_code == 200
    monkeypatch.setattr("builtins.input", lambda prompt: "yes")
    assert "Ended 1 session(s)" in run("purge_tokens", "--all")


def test_purge_reports_progress_on_large_keyspaces(user, login):
    for _ in range(12):
        login(user)
    err = io.StringIO()
    call_command("purge_tokens", "--batch-size", "1", stdout=io.StringIO(), stderr=err)
    assert "... scanned" in err.getvalue()


def test_purge_rejects_a_bad_batch_size():
    with pytest.raises(CommandError, match="batch-size"):
        run("purge_tokens", "--batch-size", "0")


def test_purge_removes_sessions_of_users_deactivated_behind_the_apps_back(api, user, login):
    pair = login(user)
    type(user).objects.filter(pk=user.pk).update(is_active=False)  # no hook ran
    assert "Removed 1 dead session(s)" in run("purge_tokens")
    type(user).objects.filter(pk=user.pk).update(is_active=True)
    assert_error(refresh(api, pair["refresh_token"]), 401, "session_revoked")
