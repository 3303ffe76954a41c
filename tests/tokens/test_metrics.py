"""Prometheus metrics in one process: what each outcome counts, and who may read /metrics."""

from datetime import timedelta

import pytest
import time_machine
from django.core.checks import run_checks
from django.test import override_settings
from prometheus_client import REGISTRY
from rest_framework.test import APIClient

from tests.helpers import LOGOUT_ALL, OBTAIN, assert_error, me, refresh, \
    unreachable_caches

pytestmark = pytest.mark.django_db

SECRET = "s3cret-scraper-token-0123456789abcdef"


class Samples:
    """Counter values now, to compare with later: delta(name, label=value)."""

    def __init__(self):
        self.start = self.read()

    @staticmethod
    def read() -> dict:
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for metric in REGISTRY.collect() if metric.name.startswith("tokens_")
                for s in metric.samples}

    def delta(self, name: str, **labels) -> float:
        key = (name, tuple(sorted(labels.items())))
        return self.read().get(key, 0) - self.start.get(key, 0)


def test_refresh_outcomes_are_counted(api, user, login):
    samples = Samples()
    pair = login(user)
    refresh(api, pair["refresh_token"])  # rotated
    refresh(api, pair["refresh_token"])  # replayed
    with time_machine.travel(timedelta(seconds=11)):
        refresh(api, pair["refresh_token"])  # reused
        refresh(api, pair["refresh_token"])  # reused before
    refresh(api, "not-a-token")
    old = login(user)
    with time_machine.travel(timedelta(days=31)):
        refresh(api, old["refresh_token"])  # expired
    ended = login(user)
    api.post(LOGOUT_ALL, HTTP_AUTHORIZATION=f"Bearer {ended['access_token']}")
    refresh(api, ended["refresh_token"])  # its session has ended
    counts = {outcome: samples.delta("tokens_refreshes_total", outcome=outcome)
              for outcome in ("rotated", "replayed", "reused", "reused_before", "invalid",
                              "expired", "session_ended")}
    assert counts == dict.fromkeys(counts, 1)
    assert samples.delta("tokens_sessions_ended_total", reason="reuse") == 1
    assert samples.delta("tokens_sessions_ended_total", reason="logout_all") == 2


def test_logins_and_limit_refusals_are_counted(api, user, login):
    samples = Samples()
    login(user)
    stranger = APIClient()  # no device cookie for alice: the username's budget counts
    for _ in range(6):
        stranger.post(OBTAIN, {"username": "alice", "password": "wrong"}, format="json")
    assert samples.delta("tokens_logins_total", outcome="success") == 1
    assert samples.delta("tokens_logins_total", outcome="invalid_credentials") == 5
    assert samples.delta("tokens_logins_total", outcome="throttled") == 1
    assert samples.delta("tokens_login_limit_refusals_total", budget="username") == 1


def test_store_calls_are_timed_and_failures_counted_by_operation(api, user, login):
    pair = login(user)
    samples = Samples()
    me(api, pair["access_token"])
    assert samples.delta("tokens_store_seconds_count", operation="check") == 1
    with override_settings(CACHES=unreachable_caches()):
        assert_error(refresh(api, pair["refresh_token"]), 503, "token_store_unavailable")
    assert samples.delta("tokens_store_errors_total", operation="rotate") == 1
    assert samples.delta("tokens_refreshes_total", outcome="unavailable") == 1


@override_settings(TOKENS={"METRICS": False})
def test_metrics_off_count_nothing(api, user, login):
    samples = Samples()
    pair = login(user)
    refresh(api, pair["refresh_token"])
    me(api, pair["access_token"])
    assert all(value == samples.start.get(key, 0) for key, value in samples.read().items())


def scrape(client, **extra):
    return client.get("/metrics", **extra)


def test_metrics_are_off_without_an_address_or_a_secret(client):
    assert_error(scrape(client, REMOTE_ADDR="127.0.0.1"), 404, "not_found")


@override_settings(TOKENS={"METRICS_ALLOWED_IPS": ["10.0.0.0/24", "::1"]})
def test_metrics_are_served_to_allowed_addresses_only(client):
    reply = scrape(client, REMOTE_ADDR="10.0.0.5")
    assert reply.status_code == 200 and b"tokens_refreshes_total" in reply.content
    assert reply["Content-Type"].startswith("text/plain")
    assert scrape(client, REMOTE_ADDR="::1").status_code == 200
    assert_error(scrape(client, REMOTE_ADDR="10.0.1.5"), 403, "permission_denied")
    # A forwarded address counts only behind a trusted proxy (DJANGO_NUM_PROXIES).
    assert_error(scrape(client, REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR="10.0.0.5"),
                 403, "permission_denied")


@override_settings(TOKENS={"METRICS_BEARER_TOKEN": SECRET})
def test_metrics_are_served_with_the_bearer_secret_only(client):
    assert scrape(client, HTTP_AUTHORIZATION=f"Bearer {SECRET}").status_code == 200
    for header in (f"Bearer {SECRET[:-1]}", f"Bearer {SECRET}x", SECRET, f"Basic {SECRET}", ""):
        assert_error(scrape(client, HTTP_AUTHORIZATION=header), 403, "permission_denied")


@pytest.mark.parametrize("tokens, error", [
    ({"METRICS_ALLOWED_IPS": ["10.0.0.0/33"]}, "tokens.E014"),
    ({"METRICS_ALLOWED_IPS": ["example.com"]}, "tokens.E014"),
    ({"METRICS_BEARER_TOKEN": "short"}, "tokens.E015"),
])
def test_bad_metrics_settings_are_refused_at_check_time(tokens, error):
    with override_settings(TOKENS=tokens):
        assert error in {message.id for message in run_checks()}
