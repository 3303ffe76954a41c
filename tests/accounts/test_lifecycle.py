"""Deleting or deactivating a user ends their sessions in Redis."""

import pytest
from django.db import transaction

from tests.helpers import assert_error, me, redis_keys, refresh

pytestmark = pytest.mark.django_db


def test_deleting_a_user_removes_their_sessions(user, make_user, login, redis_conn, api,
                                                django_capture_on_commit_callbacks):
    login(user), login(user)
    bob = login(make_user(username="bob"))
    tag = b"{%d}" % user.pk
    with django_capture_on_commit_callbacks(execute=True):
        user.delete()
    assert redis_keys(redis_conn) and all(tag not in k for k in redis_keys(redis_conn))
    assert refresh(api, bob["refresh_token"]).status_code == 200


def test_deactivating_a_user_ends_their_sessions(user, login, redis_conn, api,
                                                 django_capture_on_commit_callbacks):
    pair = login(user)
    user.is_active = False
    with django_capture_on_commit_callbacks(execute=True):
        user.save()
    assert redis_keys(redis_conn) == []
    user.is_active = True
    user.save()
    # Reactivation does not bring the sessions back.
    assert_error(refresh(api, pair["refresh_token"]), 401, "session_revoked")
    assert_error(me(api, pair["access_token"]), 401, "session_revoked")


def test_saving_an_active_user_keeps_their_sessions(user, login, api,
                                                    django_capture_on_commit_callbacks):
    pair = login(user)
    user.first_name = "Alice"
    with django_capture_on_commit_callbacks(execute=True):
        user.save()
    assert refresh(api, pair["refresh_token"]).status_code == 200


class Rollback(Exception):
    pass


def end(user, change: str) -> None:
    if change == "delete":
        user.delete()
    else:
        user.is_active = False
        user.save()


# Transactional: on_commit callbacks run at a real commit and are dropped at a real rollback,
# not collected by a test wrapper that can neither commit nor roll back.
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("change", ["deactivate", "delete"])
def test_a_rolled_back_deactivation_or_deletion_ends_nothing(change, user, login, api,
                                                             redis_conn):
    pair, pk = login(user), user.pk
    before = sorted(redis_keys(redis_conn))
    with pytest.raises(Rollback), transaction.atomic():
        end(user, change)
        raise Rollback
    assert sorted(redis_keys(redis_conn)) == before
    user = type(user).objects.get(pk=pk)  # delete() cleared the instance's pk
    assert user.is_active
    assert refresh(api, pair["refresh_token"]).status_code == 200
    # The same change committed does end the session: the hook runs in this setup.
    with transaction.atomic():
        end(user, change)
    assert redis_keys(redis_conn) == []


def test_deactivation_by_queryset_update_ends_sessions_on_first_use(user, login, api,
                                                                    redis_conn):
    pair, other = login(user), login(user)
    type(user).objects.filter(pk=user.pk).update(is_active=False)  # no signal sent
    assert_error(me(api, pair["access_token"]), 401, "user_inactive")
    left = redis_keys(redis_conn)
    assert left == [] or all(b"{%d}" % user.pk not in k for k in left)
    type(user).objects.filter(pk=user.pk).update(is_active=True)
    for token in (pair, other):
        assert_error(me(api, token["access_token"]), 401, "session_revoked")
        assert_error(refresh(api, token["refresh_token"]), 401, "session_revoked")


def test_deactivation_by_queryset_update_is_noticed_on_refresh_too(user, login, api):
    pair = login(user)
    type(user).objects.filter(pk=user.pk).update(is_active=False)
    assert_error(refresh(api, pair["refresh_token"]), 401, "user_inactive")
    type(user).objects.filter(pk=user.pk).update(is_active=True)
    assert_error(refresh(api, pair["refresh_token"]), 401, "session_revoked")
    assert_error(me(api, pair["access_token"]), 401, "session_revoked")
