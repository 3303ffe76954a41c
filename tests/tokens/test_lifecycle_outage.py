"""Redis down when a deactivated or deleted user's sessions should end (tokens/signals.py):
the user's tokens are refused anyway, and `manage.py purge_tokens` removes what is left."""

import io
import logging

import pytest
from django.core.management import call_command
from django.test import override_settings

from tests.helpers import assert_error, me, redis_keys, refresh, unreachable_caches

pytestmark = pytest.mark.django_db


def keys_of(redis_conn, user) -> list[bytes]:
    return redis_keys(redis_conn, f"*tokens:{{{user.pk}}}:*")


def end_user_during_outage(user, how: str, capture) -> None:
    """Deactivate or delete `user`; its after-commit hook runs while Redis is unreachable."""
    with override_settings(CACHES=unreachable_caches()), capture(execute=True) as callbacks:
        if how == "deactivate":
            user.is_active = False
            user.save()
        else:
            type(user).objects.get(pk=user.pk).delete()
    assert len(callbacks) == 1  # the hook ran, and failed without failing the save


@pytest.mark.parametrize("how, code", [("deactivate", "user_inactive"),
                                       ("delete", "token_invalid")])
def test_tokens_are_refused_when_the_hook_found_redis_down(api, user, login, redis_conn, caplog,
                                                           django_capture_on_commit_callbacks,
                                                           how, code):
    pair, other = login(user), login(user)
    with caplog.at_level(logging.ERROR):
        end_user_during_outage(user, how, django_capture_on_commit_callbacks)
    assert any("unavailable" in r.getMessage() for r in caplog.records)
    assert len(keys_of(redis_conn, user)) == 3  # both sessions and the index, left over
    assert_error(me(api, pair["access_token"]), 401, code)
    assert_error(refresh(api, other["refresh_token"]), 401, code)
    assert_error(refresh(api, pair["refresh_token"]), 401, code)


@pytest.mark.parametrize("how", ["deactivate", "delete"])
def test_purge_removes_the_sessions_the_hook_left_behind(api, user, make_user, login, redis_conn,
                                                         django_capture_on_commit_callbacks,
                                                         how):
    pair = login(user)
    bob = make_user(username="bob")
    bobs = login(bob)
    end_user_during_outage(user, how, django_capture_on_commit_callbacks)
    assert len(keys_of(redis_conn, user)) == 2  # the session and the index

    out = io.StringIO()
    call_command("purge_tokens", stdout=out, stderr=io.StringIO())  # Redis is back
    assert "Removed 1 dead session(s)" in out.getvalue()
    assert keys_of(redis_conn, user) == []
    assert refresh(api, bobs["refresh_token"]).status_code == 200
    if how == "deactivate":
        user.is_active = True
        user.save()  # reactivated: the purged sessions do not come back
        assert_error(refresh(api, pair["refresh_token"]), 401, "session_revoked")
        assert_error(me(api, pair["access_token"]), 401, "session_revoked")
