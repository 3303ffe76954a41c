"""The integrators' signals (tokens.signals): each sent once, with the documented arguments,
from every path that ends a session; a receiver that raises breaks nothing."""

from collections import defaultdict
from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command

from tests.helpers import (LOGOUT, LOGOUT_ALL, OBTAIN, PASSWORD, PASSWORD_URL, assert_error,
                           claims_of, me, refresh)
from tokens import signals

pytestmark = pytest.mark.django_db(transaction=True)  # the lifecycle hooks run on commit

SIGNALS = ("session_started", "session_ended", "refresh_token_reused", "login_refused")
NEW_PASSWORD = "a much better passphrase 42"


@pytest.fixture
def received():
    """What each signal was sent with: {name: [kwargs, ...]}."""
    calls = defaultdict(list)
    receivers = {}
    for name in SIGNALS:
        def receiver(sender, signal, name=name, **kwargs):
            assert sender is None
            calls[name].append(kwargs)
        receivers[name] = receiver
        getattr(signals, name).connect(receiver)
    yield calls
    for name, receiver in receivers.items():
        getattr(signals, name).disconnect(receiver)


def ended(sid, uid, reason):
    return {"user_id": str(uid), "session_id": sid, "reason": reason}


def test_a_login_sends_session_started_once(api, user, login, received):
    pair = login(user, HTTP_USER_AGENT="Firefox/140", REMOTE_ADDR="10.0.0.7")
    assert received["session_started"] == [{
        "user": user, "session_id": claims_of(pair["refresh_token"])["sid"],
        "ip_address": "10.0.0.7", "user_agent": "Firefox/140"}]
    assert set(received) == {"session_started"}


def test_rotated_and_replayed_send_nothing_reused_sends_once(api, user, login, received):
    first = login(user, HTTP_USER_AGENT="Firefox/140")
    sid = claims_of(first["refresh_token"])["sid"]
    received.clear()
    assert refresh(api, first["refresh_token"]).status_code == 200  # rotated
    assert refresh(api, first["refresh_token"]).status_code == 200  # replayed, in the leeway
    assert not received
    with time_machine.travel(timedelta(seconds=11)):
        reply = api.post("/api/auth/token/refresh/", {"refresh_token": first["refresh_token"]},
                         format="json", HTTP_USER_AGENT="curl/8", REMOTE_ADDR="10.6.6.6")
        assert_error(reply, 401, "token_reused")
        assert_error(refresh(api, first["refresh_token"]), 401, "token_reused")  # heard before
    assert received == {
        "refresh_token_reused": [{"user": user, "session_id": sid, "ip_address": "10.6.6.6",
                                  "user_agent": "curl/8"}],
        "session_ended": [ended(sid, user.pk, "reuse")],
    }


def test_logout_sends_session_ended_once(api, user, login, received):
    pair = login(user)
    for _ in range(2):  # the second ends nothing
        api.post(LOGOUT, {"refresh_token": pair["refresh_token"]}, format="json")
    assert received["session_ended"] == [
        ended(claims_of(pair["refresh_token"])["sid"], user.pk, "logout")]


def test_logout_everywhere_sends_one_per_session(api, user, login, received):
    pairs = [login(user), login(user)]
    api.post(LOGOUT_ALL, HTTP_AUTHORIZATION=f"Bearer {pairs[0]['access_token']}")
    sids = {claims_of(p["refresh_token"])["sid"] for p in pairs}
    assert sorted(received["session_ended"], key=lambda c: c["session_id"]) == [
        ended(sid, user.pk, "logout_all") for sid in sorted(sids)]


def test_a_password_change_ends_the_other_sessions(api, user, login, received):
    mine, other = login(user), login(user)
    reply = api.post(PASSWORD_URL, {"old_password": PASSWORD, "new_password": NEW_PASSWORD},
                     format="json", HTTP_AUTHORIZATION=f"Bearer {mine['access_token']}")
    assert reply.status_code == 200, reply.content
    assert received["session_ended"] == [
        ended(claims_of(other["refresh_token"])["sid"], user.pk, "password_change")]


def test_a_command_revocation_says_command(user, login, received):
    pair = login(user)
    call_command("revoke_sessions", "alice", stdout=None)
    assert received["session_ended"] == [
        ended(claims_of(pair["refresh_token"])["sid"], user.pk, "command")]


def test_deactivation_and_deletion_say_so(user, make_user, login, received):
    bob = make_user(username="bob")
    alice_sid = claims_of(login(user)["refresh_token"])["sid"]
    bob_sid = claims_of(login(bob)["refresh_token"])["sid"]
    user.is_active = False
    user.save()
    bob_pk = bob.pk
    bob.delete()
    assert received["session_ended"] == [ended(alice_sid, user.pk, "user_deactivated"),
                                         ended(bob_sid, bob_pk, "user_deleted")]


def test_a_deactivation_without_a_signal_is_noticed_on_use(api, user, login, received):
    pair = login(user)
    type(user).objects.filter(pk=user.pk).update(is_active=False)  # no post_save
    assert_error(me(api, pair["access_token"]), 401, "user_inactive")
    assert received["session_ended"] == [
        ended(claims_of(pair["refresh_token"])["sid"], user.pk, "user_deactivated")]


def test_login_refused_by_the_username_budget(api, user, received):
    for _ in range(5):
        api.post(OBTAIN, {"username": "alice", "password": "wrong"}, format="json")
    assert not received["login_refused"]
    reply = api.post(OBTAIN, {"username": "Alice", "password": "wrong"}, format="json",
                     HTTP_USER_AGENT="bot\x1b[2J", REMOTE_ADDR="10.0.0.9")
    assert_error(reply, 429, "throttled")
    [call] = received["login_refused"]
    assert call["username"] == "Alice" and call["budgets"] == ("username",)
    assert call["ip_address"] == "10.0.0.9" and call["user_agent"] == "bot\\x1b[2J"
    assert 0 < call["wait"] <= 60


def test_a_raising_receiver_breaks_no_login_refresh_or_logout(api, user, login, caplog):
    def broken(sender, **kwargs):
        raise RuntimeError("receiver bug")

    for name in SIGNALS:
        getattr(signals, name).connect(broken)
    try:
        pair = login(user)
        assert refresh(api, pair["refresh_token"]).status_code == 200
        with time_machine.travel(timedelta(seconds=11)):
            assert_error(refresh(api, pair["refresh_token"]), 401, "token_reused")
        pair = login(user)
        assert api.post(LOGOUT, {"refresh_token": pair["refresh_token"]},
                        format="json").status_code == 204
    finally:
        for name in SIGNALS:
            getattr(signals, name).disconnect(broken)
    logged = [r.getMessage() for r in caplog.records if r.name == "tokens.signals"]
    assert len(logged) == 5 and all("RuntimeError: receiver bug" in m for m in logged)
    assert pair["refresh_token"] not in caplog.text
