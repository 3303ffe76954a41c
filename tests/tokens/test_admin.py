"""Ending users' sessions from the Django admin."""

import re
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.test import override_settings
from rest_framework.test import APIClient

from tests.helpers import PASSWORD, SESSIONS, assert_error, me, refresh, unreachable_caches

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, make_user):
    admin = make_user(username="root", is_staff=True, is_superuser=True)
    client.force_login(admin)
    return client


def change_url(user):
    return f"/admin/accounts/user/{user.pk}/change/"


def sessions_url(user):
    return f"/admin/accounts/user/{user.pk}/sessions/"


def revoke_url(user):
    return f"/admin/accounts/user/{user.pk}/sessions/revoke/"


def revoke_all_url(user):
    return f"/admin/accounts/user/{user.pk}/sessions/revoke-all/"


CHANGELIST = "/admin/accounts/user/"


def current_session_id(api, pair):
    sessions = api.get(SESSIONS, HTTP_AUTHORIZATION=f"Bearer {pair['access_token']}")
    return next(s["id"] for s in sessions.json() if s["current"])


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_change_page_links_to_the_sessions_page_with_their_count(admin_client, user, login):
    login(user)
    login(user)
    html = admin_client.get(change_url(user)).content.decode()
    assert f'<a href="{sessions_url(user)}">Sessions (2)</a>' in html


def test_change_page_links_to_the_users_security_events(admin_client, user, make_user, login):
    other = make_user(username="bob")
    with override_settings(TOKENS={"ROTATION_LEEWAY": timedelta(0)}):
        for someone in (user, other):  # a reuse each: one security event each
            spent = login(someone)["refresh_token"]
            for _ in range(2):
                refresh(APIClient(), spent)
    html = admin_client.get(change_url(user)).content.decode()
    tools = html[html.index('class="object-tools"'):]
    link = re.search(r'<a href="([^"]+)">Security events</a>', tools[:tools.index("</ul>")])
    assert link is not None
    events = admin_client.get(link[1].replace("&amp;", "&"))
    assert events.status_code == 200
    assert [event.user_id for event in events.context["cl"].result_list] == [user.pk]


def test_sessions_page_lists_live_sessions_with_short_ids_and_seconds(admin_client, api, user,
                                                                      login):
    pair = login(user, HTTP_USER_AGENT="Firefox/140", REMOTE_ADDR="10.9.8.7")
    target = current_session_id(api, pair)
    page = admin_client.get(sessions_url(user))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Firefox/140" in html and "10.9.8.7" in html
    assert f"<code>{target[:8]}</code>" in html and target not in html.replace(
        f'value="{target}"', "")
    session = page.context["rows"][0]["session"]
    times = re.findall(r'<time datetime="[^"]+">([^<]+)</time>', html)
    assert times == [moment.strftime("%Y-%m-%d %H:%M:%S UTC") for moment in (
        session.created_at, session.last_used_at, session.expires_at)]
    assert f'aria-label="Revoke session {target[:8]}"' in html
    assert revoke_all_url(user) in html


def test_a_hostile_user_agent_is_shown_escaped(admin_client, user, make_user, login):
    login(user, HTTP_USER_AGENT='<script>alert("ua")</script>')
    for page in (admin_client.get(sessions_url(user)), admin_client.get(revoke_all_url(user)),
                 admin_client.post(CHANGELIST, {"action": "revoke_all_sessions",
                                                "_selected_action": [user.pk]})):
        html = page.content.decode()
        assert "<script>alert" not in html and "&lt;script&gt;alert(&quot;ua&quot;)" in html


def test_sessions_page_without_sessions_says_so(admin_client, user):
    html = admin_client.get(sessions_url(user)).content.decode()
    assert "No live sessions." in html and revoke_all_url(user) not in html


def test_revoking_one_session_ends_it_and_is_logged_with_its_short_id(admin_client, api, user,
                                                                     login):
    first, second = login(user), login(user)
    target = current_session_id(api, first)
    response = admin_client.post(revoke_url(user), {"session": target}, follow=True)
    assert response.redirect_chain[-1][0] == sessions_url(user)
    assert messages_of(response) == [f"Revoked session {target[:8]} of alice."]
    assert_error(refresh(api, first["refresh_token"]), 401, "session_revoked")
    assert_error(me(api, first["access_token"]), 401, "session_revoked")
    assert refresh(api, second["refresh_token"]).status_code == 200
    entry = LogEntry.objects.get(object_id=str(user.pk))
    assert entry.get_change_message() == f"Revoked session {target[:8]}."


def test_revoke_all_asks_first_and_changes_nothing_until_confirmed(admin_client, api, user,
                                                                 login):
    pair = login(user, HTTP_USER_AGENT="Firefox/140")
    page = admin_client.get(revoke_all_url(user))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Are you sure" in html and "Firefox/140" in html
    assert current_session_id(api, pair)[:8] in html
    assert refresh(api, pair["refresh_token"]).status_code == 200
    assert not LogEntry.objects.exists()


def test_confirmed_revoke_all_ends_every_session_and_is_logged(admin_client, api, user, login):
    pairs = [login(user) for _ in range(3)]
    response = admin_client.post(revoke_all_url(user), {"post": "yes"}, follow=True)
    assert response.redirect_chain[-1][0] == sessions_url(user)
    assert messages_of(response) == ["Revoked 3 sessions of alice."]
    for pair in pairs:
        assert_error(refresh(api, pair["refresh_token"]), 401, "session_revoked")
        assert_error(me(api, pair["access_token"]), 401, "session_revoked")
    assert LogEntry.objects.get().get_change_message() == "Revoked all sessions (3)."


def test_revoke_all_with_nothing_to_revoke_writes_no_history(admin_client, user, make_user):
    response = admin_client.post(revoke_all_url(user), {"post": "yes"}, follow=True)
    assert messages_of(response) == ["No live sessions: nothing was revoked."]
    bob = make_user(username="bob")
    admin_client.post(CHANGELIST, {"action": "revoke_all_sessions", "post": "yes",
                                   "_selected_action": [user.pk, bob.pk]})
    assert not LogEntry.objects.exists()


def test_changelist_action_asks_first(admin_client, api, user, make_user, login):
    bob = make_user(username="bob")
    alice_pair = login(user, HTTP_USER_AGENT="Firefox/140")
    page = admin_client.post(
        CHANGELIST, {"action": "revoke_all_sessions", "_selected_action": [user.pk, bob.pk]})
    assert page.status_code == 200
    html = page.content.decode()
    assert "Are you sure" in html and "Firefox/140" in html and "bob" in html
    assert html.count('name="_selected_action"') == 2 and 'name="post"' in html
    assert refresh(api, alice_pair["refresh_token"]).status_code == 200
    assert not LogEntry.objects.exists()


def test_confirmed_changelist_action_revokes_selected_users_only(admin_client, api, user,
                                                               make_user, login):
    bob, carol = make_user(username="bob"), make_user(username="carol")
    alice_pair, bob_pair, carol_pair = login(user), login(bob), login(carol)
    response = admin_client.post(
        CHANGELIST,
        {"action": "revoke_all_sessions", "post": "yes", "_selected_action": [user.pk, bob.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert messages_of(response) == ["Revoked 2 sessions of 2 users."]
    for pair in (alice_pair, bob_pair):
        assert_error(refresh(api, pair["refresh_token"]), 401, "session_revoked")
    assert refresh(api, carol_pair["refresh_token"]).status_code == 200
    assert LogEntry.objects.count() == 2


@pytest.fixture
def viewer_client(client, make_user):
    """Staff who may view users but not change them."""
    viewer = make_user(username="viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_user"))
    client.force_login(viewer)
    return client


def test_staff_who_may_change_users_see_the_count_and_only_the_links_they_may_follow(
        client, make_user, user, login):
    changer = make_user(username="changer", is_staff=True)
    for codename in ("view_user", "change_user"):
        changer.user_permissions.add(Permission.objects.get(codename=codename))
    client.force_login(changer)
    login(user)
    html = client.get(change_url(user)).content.decode()
    assert f'<a href="{sessions_url(user)}">Sessions (1)</a>' in html
    assert "?user__id__exact=" not in html  # no security events for them
    changer.user_permissions.add(Permission.objects.get(codename="view_securityevent"))
    client.force_login(changer)
    assert "?user__id__exact=" in client.get(change_url(user)).content.decode()


def test_view_only_staff_see_no_sessions_and_cannot_revoke(viewer_client, api, user, login):
    pair = login(user)
    page = viewer_client.get(change_url(user))
    assert page.status_code == 200
    assert sessions_url(user) not in page.content.decode()
    assert viewer_client.get(sessions_url(user)).status_code == 403
    assert viewer_client.get(revoke_all_url(user)).status_code == 403
    assert viewer_client.post(revoke_all_url(user), {"post": "yes"}).status_code == 403
    assert viewer_client.post(revoke_url(user), {"session": "x"}).status_code == 403
    action_form = viewer_client.get(CHANGELIST).context["action_form"]
    choices = dict(action_form.fields["action"].choices) if action_form else {}
    assert "revoke_all_sessions" not in choices
    assert refresh(api, pair["refresh_token"]).status_code == 200


@pytest.mark.parametrize("url", [sessions_url, revoke_url, revoke_all_url])
def test_anonymous_is_sent_to_the_admin_login(client, user, url):
    response = client.post(url(user))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_revoking_an_ended_session_says_so(admin_client, user):
    response = admin_client.post(revoke_url(user), {"session": "gone"}, follow=True)
    assert messages_of(response) == ["That session had already ended."]
    assert not LogEntry.objects.exists()


def test_revoke_needs_post(admin_client, user):
    assert admin_client.get(revoke_url(user)).status_code == 405


def test_store_outage_shows_a_notice_not_an_error_page(admin_client, user):
    with override_settings(CACHES=unreachable_caches()):
        assert 'Sessions</a>' in admin_client.get(change_url(user)).content.decode()
        page = admin_client.get(sessions_url(user))
        assert page.status_code == 200
        assert "token store is unavailable" in page.content.decode()
        for response in (
            admin_client.get(revoke_all_url(user), follow=True),
            admin_client.post(revoke_all_url(user), {"post": "yes"}, follow=True),
            admin_client.post(revoke_url(user), {"session": "x"}, follow=True),
            admin_client.post(CHANGELIST, {"action": "revoke_all_sessions",
                                           "_selected_action": [user.pk]}, follow=True),
        ):
            assert response.status_code == 200
            assert "nothing was revoked" in " ".join(messages_of(response))
    assert not LogEntry.objects.exists()


# --- Password changes through the admin end the user's token sessions ---

NEW = "a much better passphrase 42"


def test_changing_ones_own_password_in_the_admin_ends_ones_token_sessions(client, make_user,
                                                                         api, login):
    staff = make_user(username="root", is_staff=True, is_superuser=True)
    pair = login(staff)
    client.force_login(staff)
    response = client.post("/admin/password_change/", {
        "old_password": PASSWORD, "new_password1": NEW, "new_password2": NEW})
    assert response.status_code == 302 and response["Location"].endswith("/done/")
    assert_error(refresh(api, pair["refresh_token"]), 401, "session_revoked")
    assert_error(me(api, pair["access_token"]), 401, "session_revoked")


@pytest.mark.parametrize("form", [
    {"usable_password": "true", "password1": NEW, "password2": NEW},
    {"usable_password": "false", "unset-password": "1"},  # password login disabled
])
def test_setting_a_users_password_in_the_admin_ends_their_token_sessions(admin_client, api,
                                                                         user, login, form):
    pairs = [login(user), login(user)]
    response = admin_client.post(f"/admin/accounts/user/{user.pk}/password/", form)
    assert response.status_code == 302 and response["Location"] == change_url(user)
    user.refresh_from_db()
    assert user.check_password(NEW) == (form["usable_password"] == "true")
    for pair in pairs:
        assert_error(refresh(api, pair["refresh_token"]), 401, "session_revoked")
        assert_error(me(api, pair["access_token"]), 401, "session_revoked")
