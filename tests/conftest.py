"""Shared fixtures: a real redis-server per test session, API clients, users."""

import threading

import pytest
import redis
from django.conf import settings
from django.test import override_settings
from django_redis import get_redis_connection
from model_bakery import baker
from rest_framework.test import APIClient

from tests.helpers import OBTAIN, PASSWORD, caches_at
from tests.servers import RedisServer
from tokens import background


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """A test's deferred tasks finish before its fixtures are torn down (database, Redis)."""
    try:
        return (yield)
    finally:
        assert background.wait_idle(10), "deferred tasks still running 10 s after the test"


@pytest.fixture
def background_held():
    """The background thread busy with a task until the test sets the returned event."""
    release, started = threading.Event(), threading.Event()

    def hold() -> None:
        started.set()
        release.wait(10)

    assert background.defer(hold, name="hold")
    assert started.wait(10)
    yield release
    release.set()


@pytest.fixture(scope="session", autouse=True)
def redis_server():
    """Every test session gets its own redis-server; the token cache points at it."""
    try:
        server = RedisServer.start()
    except FileNotFoundError as exc:
        pytest.exit(f"{exc}: run `make test`, which installs it.", returncode=2)
    override = override_settings(CACHES=caches_at(server.url))
    override.enable()
    try:
        yield server
    finally:
        override.disable()
        server.stop()


@pytest.fixture(autouse=True)
def _empty_redis(redis_server):
    # Our own server: flushing it between tests is safe (the app itself never flushes).
    redis.Redis(port=redis_server.port).flushdb()


@pytest.fixture
def redis_conn():
    """The token cache's own Redis connection, to look at what the app stored."""
    return get_redis_connection("default")


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def make_user(db):
    def make(**fields):
        user = baker.make(settings.AUTH_USER_MODEL, **{"is_active": True, **fields})
        user.set_password(PASSWORD)
        user.save()
        return user

    return make


@pytest.fixture
def user(make_user):
    return make_user(username="alice", email="alice@example.com")


@pytest.fixture
def root(make_user):
    """A superuser."""
    return make_user(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def superuser_client(client, root):
    """Django's test client logged in as `root` (not pytest-django's `admin_client`, whose
    superuser is another)."""
    client.force_login(root)
    return client


@pytest.fixture
def login(api):
    """POST the credentials to the obtain endpoint; returns the token pair."""

    def do_login(user, **extra) -> dict:
        response = api.post(
            OBTAIN, {"username": user.username, "password": PASSWORD}, format="json", **extra,
        )
        assert response.status_code == 200, response.content
        return response.json()

    return do_login
