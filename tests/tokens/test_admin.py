"""Ending users' sessions from the Django admin."""

import re
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group, Permission
from django.forms import MultiWidget
from django.test import Client, override_settings
from rest_framework.test import APIClient

from accounts.models import User
from tests.helpers import (NEW_PASSWORD, PASSWORD, SESSIONS, assert_error, me, refresh,
                           unreachable_caches)

pytestmark = pytest.mark.django_db


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


def test_change_page_links_to_the_sessions_page_with_their_count(superuser_client, user, login):
    login(user)
    login(user)
    html = superuser_client.get(change_url(user)).content.decode()
    assert f'<a href="{sessions_url(user)}">Sessions (2)</a>' in html


def test_change_page_links_to_the_users_security_events(superuser_client, user, make_user, login):
    other = make_user(username="bob")
    with override_settings(TOKENS={"ROTATION_LEEWAY": timedelta(0)}):
        for someone in (user, other):  # a reuse each: one security event each
            spent = login(someone)["refresh_token"]
            for _ in range(2):
                refresh(APIClient(), spent)
    html = superuser_client.get(change_url(user)).content.decode()
    tools = html[html.index('class="object-tools"'):]
    link = re.search(r'<a href="([^"]+)">Security events</a>', tools[:tools.index("</ul>")])
    assert link is not None
    events = superuser_client.get(link[1].replace("&amp;", "&"))
    assert events.status_code == 200
    assert [event.user_id for event in events.context["cl"].result_list] == [user.pk]


def test_sessions_page_lists_live_sessions_with_short_ids_and_seconds(superuser_client, api, user,
                                                                      login):
    pair = login(user, HTTP_USER_AGENT="Firefox/140", REMOTE_ADDR="10.9.8.7")
    target = current_session_id(api, pair)
    page = superuser_client.get(sessions_url(user))
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


def test_a_hostile_user_agent_is_shown_escaped(superuser_client, user, make_user, login):
    login(user, HTTP_USER_AGENT='<script>alert("ua")</script>')
    for page in (superuser_client.get(sessions_url(user)),
                 superuser_client.get(revoke_all_url(user)),
                 superuser_client.post(CHANGELIST, {"action": "revoke_all_sessions",
                                                    "_selected_action": [user.pk]})):
        html = page.content.decode()
        assert "<script>alert" not in html and "&lt;script&gt;alert(&quot;ua&quot;)" in html


def test_sessions_page_without_sessions_says_so(superuser_client, user):
    html = superuser_client.get(sessions_url(user)).content.decode()
    assert "No live sessions." in html and revoke_all_url(user) not in html


def test_revoking_one_session_ends_it_and_is_logged_with_its_short_id(superuser_client, api, user,
                                                                     login):
    first, second = login(user), login(user)
    target = current_session_id(api, first)
    response = superuser_client.post(revoke_url(user), {"session": target}, follow=True)
    assert response.redirect_chain[-1][0] == sessions_url(user)
    assert messages_of(response) == [f"Revoked session {target[:8]} of alice."]
    assert_error(refresh(api, first["refresh_token"]), 401, "session_revoked")
    assert_error(me(api, first["access_token"]), 401, "session_revoked")
    assert refresh(api, second["refresh_token"]).status_code == 200
    entry = LogEntry.objects.get(object_id=str(user.pk))
    assert entry.get_change_message() == f"Revoked session {target[:8]}."


def test_revoke_all_asks_first_and_changes_nothing_until_confirmed(superuser_client, api, user,
                                                                 login):
    pair = login(user, HTTP_USER_AGENT="Firefox/140")
    page = superuser_client.get(revoke_all_url(user))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Are you sure" in html and "Firefox/140" in html
    assert current_session_id(api, pair)[:8] in html
    assert refresh(api, pair["refresh_token"]).status_code == 200
    assert not LogEntry.objects.exists()


def test_confirmed_revoke_all_ends_every_session_and_is_logged(superuser_client, api, user, login):
    pairs = [login(user) for _ in range(3)]
    response = superuser_client.post(revoke_all_url(user), {"post": "yes"}, follow=True)
    assert response.redirect_chain[-1][0] == sessions_url(user)
    assert messages_of(response) == ["Revoked 3 sessions of alice."]
    for pair in pairs:
        assert_error(refresh(api, pair["refresh_token"]), 401, "session_revoked")
        assert_error(me(api, pair["access_token"]), 401, "session_revoked")
    assert LogEntry.objects.get().get_change_message() == "Revoked all sessions (3)."


def test_revoke_all_with_nothing_to_revoke_writes_no_history(superuser_client, user, make_user):
    response = superuser_client.post(revoke_all_url(user), {"post": "yes"}, follow=True)
    assert messages_of(response) == ["No live sessions: nothing was revoked."]
    bob = make_user(username="bob")
    superuser_client.post(CHANGELIST, {"action": "revoke_all_sessions", "post": "yes",
                                       "_selected_action": [user.pk, bob.pk]})
    assert not LogEntry.objects.exists()


def test_changelist_action_asks_first(superuser_client, api, user, make_user, login):
    bob = make_user(username="bob")
    alice_pair = login(user, HTTP_USER_AGENT="Firefox/140")
    page = superuser_client.post(
        CHANGELIST, {"action": "revoke_all_sessions", "_selected_action": [user.pk, bob.pk]})
    assert page.status_code == 200
    html = page.content.decode()
    assert "Are you sure" in html and "Firefox/140" in html and "bob" in html
    assert html.count('name="_selected_action"') == 2 and 'name="post"' in html
    assert refresh(api, alice_pair["refresh_token"]).status_code == 200
    assert not LogEntry.objects.exists()


def test_confirmed_changelist_action_revokes_selected_users_only(superuser_client, api, user,
                                                               make_user, login):
    bob, carol = make_user(username="bob"), make_user(username="carol")
    alice_pair, bob_pair, carol_pair = login(user), login(bob), login(carol)
    response = superuser_client.post(
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


def perm(name: str) -> Permission:
    """A permission by codename, or by "app_label.codename" where two apps share one."""
    app_label, _, codename = name.rpartition(".")
    found = Permission.objects.filter(codename=codename)
    return (found.filter(content_type__app_label=app_label) if app_label else found).get()


def limited_staff(make_user, *perms: str, username="baker"):
    """A staff user with just these permissions."""
    staff = make_user(username=username, is_staff=True)
    staff.user_permissions.add(*(perm(name) for name in perms))
    return staff


@pytest.fixture
def viewer_client(client, make_user):
    """Staff who may view users but not change them."""
    viewer = make_user(username="viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_user"))
    client.force_login(viewer)
    return client


def test_staff_who_may_view_sessions_see_the_count_and_only_the_links_they_may_follow(
        client, make_user, user, login):
    staff = limited_staff(make_user, "view_user", "tokens.view_session")
    client.force_login(staff)
    login(user)
    html = client.get(change_url(user)).content.decode()
    assert f'<a href="{sessions_url(user)}">Sessions (1)</a>' in html
    assert "?user__id__exact=" not in html  # no security events for them
    staff.user_permissions.add(perm("view_securityevent"))
    client.force_login(staff)
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


def test_revoking_an_ended_session_says_so(superuser_client, user):
    response = superuser_client.post(revoke_url(user), {"session": "gone"}, follow=True)
    assert messages_of(response) == ["That session had already ended."]
    assert not LogEntry.objects.exists()


def test_revoke_needs_post(superuser_client, user):
    assert superuser_client.get(revoke_url(user)).status_code == 405


def test_store_outage_shows_a_notice_not_an_error_page(superuser_client, user):
    with override_settings(CACHES=unreachable_caches()):
        assert 'Sessions</a>' in superuser_client.get(change_url(user)).content.decode()
        page = superuser_client.get(sessions_url(user))
        assert page.status_code == 200
        assert "token store is unavailable" in page.content.decode()
        for response in (
            superuser_client.get(revoke_all_url(user), follow=True),
            superuser_client.post(revoke_all_url(user), {"post": "yes"}, follow=True),
            superuser_client.post(revoke_url(user), {"session": "x"}, follow=True),
            superuser_client.post(CHANGELIST, {"action": "revoke_all_sessions",
                                               "_selected_action": [user.pk]}, follow=True),
        ):
            assert response.status_code == 200
            assert "nothing was revoked" in " ".join(messages_of(response))
    assert not LogEntry.objects.exists()


# --- Password changes through the admin end the user's token sessions ---

def test_changing_ones_own_password_in_the_admin_ends_ones_token_sessions(client, make_user,
                                                                         api, login):
    staff = make_user(username="root", is_staff=True, is_superuser=True)
    pair = login(staff)
    client.force_login(staff)
    response = client.post("/admin/password_change/", {
        "old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert response.status_code == 302 and response["Location"].endswith("/done/")
    assert_error(refresh(api, pair["refresh_token"]), 401, "session_revoked")
    assert_error(me(api, pair["access_token"]), 401, "session_revoked")


@pytest.mark.parametrize("form", [
    {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    {"usable_password": "false", "unset-password": "1"},  # password login disabled
])
def test_setting_a_users_password_in_the_admin_ends_their_token_sessions(superuser_client, api,
                                                                         user, login, form):
    pairs = [login(user), login(user)]
    response = superuser_client.post(f"/admin/accounts/user/{user.pk}/password/", form)
    assert response.status_code == 302 and response["Location"] == change_url(user)
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD) == (form["usable_password"] == "true")
    for pair in pairs:
        assert_error(refresh(api, pair["refresh_token"]), 401, "session_revoked")
        assert_error(me(api, pair["access_token"]), 401, "session_revoked")


# --- Delegated session management: its own permissions, never over a superuser ---

def sessions_manager(client, make_user, *perms, on_users="view_user"):
    client.force_login(limited_staff(make_user, on_users, *perms, username="manager"))
    return client


def action_choices(client) -> dict:
    action_form = client.get(CHANGELIST).context["action_form"]
    return dict(action_form.fields["action"].choices) if action_form else {}


def test_changing_users_is_no_permission_to_see_or_end_their_sessions(client, make_user, api,
                                                                       user, login):
    pair = login(user)
    client.force_login(limited_staff(make_user, "view_user", "change_user"))
    assert sessions_url(user) not in client.get(change_url(user)).content.decode()
    assert client.get(sessions_url(user)).status_code == 403
    assert client.get(revoke_all_url(user)).status_code == 403
    assert client.post(revoke_all_url(user), {"post": "yes"}).status_code == 403
    assert client.post(revoke_url(user), {"session": current_session_id(api, pair)}
                       ).status_code == 403
    assert "revoke_all_sessions" not in action_choices(client)
    client.post(CHANGELIST, {"action": "revoke_all_sessions", "post": "yes",
                             "_selected_action": [user.pk]})
    assert refresh(api, pair["refresh_token"]).status_code == 200


def test_view_session_shows_the_page_without_revoke_buttons_and_revokes_nothing(
        client, make_user, api, user, login):
    pair = login(user, HTTP_USER_AGENT="Firefox/140")
    manager = sessions_manager(client, make_user, "tokens.view_session")
    page = manager.get(sessions_url(user))
    html = page.content.decode()
    assert page.status_code == 200 and "Firefox/140" in html
    assert "Revoke session" not in html and revoke_all_url(user) not in html
    assert manager.get(revoke_all_url(user)).status_code == 403
    assert manager.post(revoke_all_url(user), {"post": "yes"}).status_code == 403
    assert manager.post(revoke_url(user), {"session": current_session_id(api, pair)}
                        ).status_code == 403
    assert "revoke_all_sessions" not in action_choices(manager)
    assert refresh(api, pair["refresh_token"]).status_code == 200


def test_session_permissions_without_any_on_users_open_nothing(client, make_user, user):
    staff = limited_staff(make_user, "tokens.view_session", "tokens.revoke_session")
    client.force_login(staff)
    assert client.get(sessions_url(user)).status_code == 403
    assert client.get(revoke_all_url(user)).status_code == 403


@pytest.mark.parametrize("on_users", ["view_user", "change_user"])
def test_revoke_session_is_enough_to_revoke_one_all_or_by_the_action(client, make_user, api,
                                                                      user, login, on_users):
    # Delegation: seeing users and managing their sessions, without the right to edit them.
    bob = make_user(username="bob")
    first, second, bobs = login(user), login(user), login(bob)
    manager = sessions_manager(client, make_user, "tokens.view_session",
                               "tokens.revoke_session", on_users=on_users)
    assert f'<a href="{sessions_url(user)}">Sessions (2)</a>' in manager.get(
        change_url(user)).content.decode()
    assert "Revoke session" in manager.get(sessions_url(user)).content.decode()
    response = manager.post(revoke_url(user), {"session": current_session_id(api, first)},
                            follow=True)
    assert messages_of(response)[0].startswith("Revoked session ")
    assert_error(refresh(api, first["refresh_token"]), 401, "session_revoked")
    assert manager.get(revoke_all_url(user)).status_code == 200
    manager.post(revoke_all_url(user), {"post": "yes"})
    assert_error(refresh(api, second["refresh_token"]), 401, "session_revoked")
    assert "revoke_all_sessions" in action_choices(manager)
    response = manager.post(CHANGELIST, {"action": "revoke_all_sessions", "post": "yes",
                                         "_selected_action": [bob.pk]}, follow=True)
    assert messages_of(response) == ["Revoked 1 session of bob."]
    assert_error(refresh(api, bobs["refresh_token"]), 401, "session_revoked")


# Staff who may change users (all it took before), and staff who may manage sessions.
STAFF_PERMS = [("change_user",),
               ("change_user", "tokens.view_session", "tokens.revoke_session")]


@pytest.mark.parametrize("perms", STAFF_PERMS)
def test_only_a_superuser_sees_or_ends_a_superusers_sessions(client, make_user, api, root,
                                                             login, perms):
    pair = login(root)
    manager = sessions_manager(client, make_user, *perms)
    page = manager.get(change_url(root))
    assert page.status_code == 200 and sessions_url(root) not in page.content.decode()
    assert manager.get(sessions_url(root)).status_code == 403
    assert manager.get(revoke_all_url(root)).status_code == 403
    assert manager.post(revoke_all_url(root), {"post": "yes"}).status_code == 403
    assert manager.post(revoke_url(root), {"session": current_session_id(api, pair)}
                        ).status_code == 403
    assert refresh(api, pair["refresh_token"]).status_code == 200
    assert not LogEntry.objects.exists()


@pytest.mark.parametrize("perms", STAFF_PERMS)
@pytest.mark.parametrize("confirmed", [False, True])
def test_the_action_with_a_superuser_selected_revokes_nothing_at_all(client, make_user, api,
                                                                     root, user, login,
                                                                     confirmed, perms):
    pairs = [login(root), login(user)]
    manager = sessions_manager(client, make_user, *perms)
    form = {"action": "revoke_all_sessions", "_selected_action": [user.pk, root.pk],
            **({"post": "yes"} if confirmed else {})}
    response = manager.post(CHANGELIST, form, follow=True)
    assert response.status_code == 200 and "Are you sure" not in response.content.decode()
    if "tokens.revoke_session" in perms:
        assert messages_of(response) == [
            "Only a superuser may revoke a superuser's sessions: nothing was revoked."]
    else:  # no such action for them
        assert not any("Revoked" in message for message in messages_of(response))
    for pair in pairs:
        assert refresh(api, pair["refresh_token"]).status_code == 200
    assert not LogEntry.objects.exists()


def test_a_superuser_manages_a_superusers_sessions(superuser_client, api, make_user, login):
    other = make_user(username="root2", is_staff=True, is_superuser=True)
    pair = login(other)
    assert superuser_client.get(sessions_url(other)).status_code == 200
    superuser_client.post(CHANGELIST, {"action": "revoke_all_sessions", "post": "yes",
                                       "_selected_action": [other.pk]})
    assert_error(refresh(api, pair["refresh_token"]), 401, "session_revoked")


# --- Staff who may change users grant no privileges and take over no one above them ---

def change_form_data(client, user) -> dict:
    """What the user's change form would POST unchanged, from its own fields."""
    form = client.get(change_url(user)).context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if field.disabled or value is None or value is False:
            continue
        if isinstance(field.widget, MultiWidget):
            data.update({f"{name}_{i}": part or ""
                         for i, part in enumerate(field.widget.decompress(value))})
        elif value is True:
            data[name] = "on"
        elif isinstance(value, list):
            data[name] = [getattr(item, "pk", item) for item in value]
        else:
            data[name] = value
    return data


ESCALATION = {"is_superuser": "on", "is_staff": "on"}


@pytest.fixture
def baker(client, make_user):
    """Staff with just view and change permission on users, logged in to the admin."""
    staff = limited_staff(make_user, "view_user", "change_user")
    client.force_login(staff)
    return staff


def test_staff_who_change_users_cannot_make_themselves_superuser(client, baker):
    group = Group.objects.create(name="admins")
    group.permissions.set(Permission.objects.all())
    form = {**change_form_data(client, baker), **ESCALATION, "first_name": "Baker",
            "groups": [group.pk], "user_permissions": [p.pk for p in Permission.objects.all()]}
    response = client.post(change_url(baker), form)
    assert response.status_code == 302  # what they may change, changed
    baker.refresh_from_db()
    assert baker.first_name == "Baker"
    assert not baker.is_superuser and not baker.groups.exists()
    assert set(baker.user_permissions.values_list("codename", flat=True)) == {
        "view_user", "change_user"}


def test_privileges_are_read_only_to_staff_and_editable_by_a_superuser(client, baker, root,
                                                                       user):
    privileges = {"is_superuser", "groups", "user_permissions"}
    for someone in (baker, user):
        page = client.get(change_url(someone))
        assert page.context["has_change_permission"]
        assert not privileges & set(page.context["adminform"].form.fields)
        assert privileges <= set(page.context["adminform"].readonly_fields)
    superuser = Client()
    superuser.force_login(root)
    assert privileges <= set(superuser.get(change_url(user)).context["adminform"].form.fields)


def test_staff_cannot_grant_privileges_to_someone_else(client, baker, user):
    form = {**change_form_data(client, user), **ESCALATION, "email": "a@example.org",
            "user_permissions": [perm("change_user").pk]}
    assert client.post(change_url(user), form).status_code == 302
    user.refresh_from_db()
    assert not user.is_superuser and not user.user_permissions.exists()
    assert user.is_staff and user.email == "a@example.org"  # what changing users allows


def test_staff_who_add_users_cannot_add_a_superuser(client, make_user):
    client.force_login(limited_staff(make_user, "view_user", "change_user", "add_user"))
    response = client.post("/admin/accounts/user/add/", {
        "username": "mole", "usable_password": "true", "password1": NEW_PASSWORD,
        "password2": NEW_PASSWORD, **ESCALATION, "user_permissions": [perm("change_user").pk]})
    assert response.status_code == 302
    mole = User.objects.get(username="mole")
    assert not mole.is_superuser and not mole.user_permissions.exists()


def test_staff_cannot_change_a_superuser_at_all(client, baker, root):
    page = client.get(change_url(root))
    assert page.status_code == 200 and not page.context["has_change_permission"]  # read-only
    form = {**change_form_data(client, root), "email": "mole@example.com"}
    assert client.post(change_url(root), {**form, "username": "root"}).status_code == 403
    root.refresh_from_db()
    assert root.email != "mole@example.com"


def test_staff_cannot_change_someone_who_may_do_more_than_they_may(client, baker, make_user):
    # Else: their email address changed to the attacker's, then a password reset.
    auditor = limited_staff(make_user, "view_securityevent", username="auditor")
    dormant = limited_staff(make_user, "delete_user", username="dormant")
    dormant.is_active = False  # permissions that come back with the account
    dormant.save()
    for someone in (auditor, dormant):
        assert not client.get(change_url(someone)).context["has_change_permission"]
        form = {**change_form_data(client, someone), "username": someone.username,
                "email": "mole@example.com", "is_active": "on"}
        assert client.post(change_url(someone), form).status_code == 403
        someone.refresh_from_db()
        assert someone.email != "mole@example.com"


@pytest.mark.parametrize("form", [
    {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    {"usable_password": "false", "unset-password": "1"},
])
def test_staff_cannot_set_another_users_password(client, baker, user, root, form):
    for someone in (user, root):
        url = f"/admin/accounts/user/{someone.pk}/password/"
        assert client.get(url).status_code == 403
        assert client.post(url, form).status_code == 403
        someone.refresh_from_db()
        assert someone.check_password(PASSWORD)


def test_staff_change_their_own_password_where_the_old_one_is_asked(client, baker):
    response = client.get(f"/admin/accounts/user/{baker.pk}/password/")
    assert response.status_code == 302 and response["Location"] == "/admin/password_change/"
    response = client.post(f"/admin/accounts/user/{baker.pk}/password/",
                           {"usable_password": "true", "password1": NEW_PASSWORD,
                            "password2": NEW_PASSWORD})
    baker.refresh_from_db()
    assert response.status_code == 302 and baker.check_password(PASSWORD)


def test_staff_who_delete_users_cannot_delete_someone_above_them(client, make_user, root,
                                                                 user):
    client.force_login(limited_staff(make_user, "view_user", "change_user", "delete_user"))
    auditor = limited_staff(make_user, "view_securityevent", username="auditor")
    for someone in (root, auditor):
        assert client.post(f"/admin/accounts/user/{someone.pk}/delete/", {"post": "yes"}
                           ).status_code == 403
        client.post(CHANGELIST, {"action": "delete_selected", "post": "yes",
                                 "_selected_action": [user.pk, someone.pk]})
    assert User.objects.filter(pk__in=[user.pk, root.pk, auditor.pk]).count() == 3
