"""Failed logins are throttled per username and per client IP, in the shared Redis."""

from datetime import timedelta

import pytest
import time_machine
from django.test import override_settings

from tests.helpers import OBTAIN, PASSWORD, assert_error

pytestmark = pytest.mark.django_db


def attempt(api, username, password="wrong", ip="192.0.2.1"):
    return api.post(OBTAIN, {"username": username, "password": password}, format="json",
                    REMOTE_ADDR=ip)


def test_failures_per_username_are_limited_then_429(api, user):
    for i in range(5):
        assert attempt(api, "alice", ip=f"192.0.2.{i}").status_code == 401
    response = attempt(api, "alice", password=PASSWORD, ip="192.0.2.99")
    assert_error(response, 429, "throttled")
    assert 0 < int(response["Retry-After"]) <= 60


def test_username_throttle_ignores_case(api, user):
    for name in ("alice", "Alice", "ALICE", "aLiCe", "alicE"):
        attempt(api, name)
    assert attempt(api, "alice", password=PASSWORD).status_code == 429


def test_throttled_username_does_not_slow_other_users(api, user, make_user):
    make_user(username="bob")
    for i in range(5):
        attempt(api, "alice", ip=f"192.0.2.{i}")
    response = attempt(api, "bob", password=PASSWORD, ip="198.51.100.1")
    assert response.status_code == 200


def test_successful_logins_are_not_counted(api, user):
    for _ in range(8):
        assert attempt(api, "alice", password=PASSWORD).status_code == 200


def test_failures_per_ip_are_limited_across_usernames(api, user):
    for i in range(20):
        attempt(api, f"guess{i}", ip="203.0.113.5")
    assert attempt(api, "alice", password=PASSWORD, ip="203.0.113.5").status_code == 429
    assert attempt(api, "alice", password=PASSWORD, ip="203.0.113.6").status_code == 200


def test_the_limit_lifts_after_the_window(api, user):
    for _ in range(5):
        attempt(api, "alice")
    assert attempt(api, "alice", password=PASSWORD).status_code == 429
    with time_machine.travel(timedelta(seconds=61)):
        assert attempt(api, "alice", password=PASSWORD).status_code == 200


@override_settings(TOKENS={"LOGIN_FAILURES_PER_USERNAME": "2/h", "LOGIN_FAILURES_PER_IP": None})
def test_rates_come_from_token_settings(api, user):
    attempt(api, "alice", ip="192.0.2.1")
    attempt(api, "alice", ip="192.0.2.2")
    response = attempt(api, "alice", password=PASSWORD, ip="192.0.2.3")
    assert response.status_code == 429
    assert 3500 < int(response["Retry-After"]) <= 3600


def test_failed_admin_logins_count_too(client, api, user):
    for _ in range(5):
        client.post("/admin/login/", {"username": "alice", "password": "wrong"})
    assert attempt(api, "alice", password=PASSWORD).status_code == 429


def test_throttle_keys_expire_and_hold_no_username(api, user, redis_conn):
    attempt(api, "alice")
    keys = [k for k in redis_conn.scan_iter() if b"throttle" in k]
    assert len(keys) == 2  # one per username, one per IP
    for key in keys:
        assert b"alice" not in key
        assert 0 < redis_conn.ttl(key) <= 60


def test_x_forwarded_for_cannot_dodge_the_ip_limit(api, user):
    for i in range(20):
        api.post(OBTAIN, {"username": f"guess{i}", "password": "x"}, format="json",
                 REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR=f"10.0.0.{i}")
    response = api.post(OBTAIN, {"username": "alice", "password": PASSWORD}, format="json",
                        REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="10.9.9.9")
    assert response.status_code == 429


def test_a_lone_surrogate_in_the_username_is_a_400(api, user):
    response = api.post(OBTAIN, '{"username": "\\ud800", "password": "x"}',
                        content_type="application/json")
    assert_error(response, 400, "invalid")


def test_login_without_a_client_address_still_works(api, user):
    response = api.post(OBTAIN, {"username": "alice", "password": PASSWORD}, format="json",
                        REMOTE_ADDR=None)
    assert response.status_code == 200


@pytest.mark.django_db(transaction=True)
def test_parallel_guesses_cannot_exceed_the_limit(user):
    import threading

    from django.db import connection
    from django.test import Client

    barrier, statuses = threading.Barrier(10), []

    def guess(i):
        client = Client()
        barrier.wait(timeout=10)
        try:
            statuses.append(client.post(OBTAIN, {"username": "alice", "password": f"no{i}"},
                                        content_type="application/json",
                                        REMOTE_ADDR=f"192.0.2.{i}").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(statuses) == [401] * 5 + [429] * 5
