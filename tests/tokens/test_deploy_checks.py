"""`manage.py check --deploy` reads the token Redis: eviction, persistence, reachability."""

import shutil
import subprocess

import pytest
from django.test import override_settings

from tests.helpers import caches_at
from tests.servers import RedisServer, refused_port
from tokens import store
from tokens.checks import check_token_redis, check_token_serializer, redis_version_warnings


def ids(warnings):
    return sorted(w.id for w in warnings)


@pytest.fixture
def redis_with(request):
    servers = []

    def start(*args):
        server = RedisServer.start(*args)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def check_against(server_url):
    with override_settings(CACHES=caches_at(server_url)):
        return check_token_redis()


def test_safe_redis_passes(redis_with):
    server = redis_with("--appendonly", "yes", "--maxmemory-policy", "noeviction")
    assert check_against(server.url) == []


@pytest.mark.parametrize("policy", ["allkeys-lru", "volatile-ttl", "volatile-lru", "allkeys-random"])
def test_evicting_redis_is_a_warning(redis_with, policy):
    server = redis_with("--appendonly", "yes", "--maxmemory-policy", policy)
    warnings = check_against(server.url)
    assert ids(warnings) == ["tokens.W001"]
    assert "noeviction" in warnings[0].hint


def test_redis_without_persistence_is_a_warning(redis_server):
    # The test Redis runs with no AOF and no save points.
    assert "tokens.W002" in ids(check_against(redis_server.url))


def test_rdb_save_points_count_as_persistence(redis_with):
    server = redis_with("--save", "900 1", "--maxmemory-policy", "noeviction")
    assert check_against(server.url) == []


def test_unreachable_redis_is_a_warning():
    assert ids(check_against(f"redis://127.0.0.1:{refused_port()}/0")) == ["tokens.W003"]


def test_refused_config_command_says_what_to_check_by_hand(redis_with):
    server = redis_with("--rename-command", "CONFIG", '""')
    warnings = check_against(server.url)
    assert ids(warnings) == ["tokens.W004"]
    assert "noeviction" in warnings[0].hint


def test_deploy_check_runs_with_check_deploy(redis_with):
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    server = redis_with("--maxmemory-policy", "allkeys-lru")
    with override_settings(CACHES=caches_at(server.url)):
        with pytest.raises(SystemCheckError, match="tokens.W001"):
            call_command("check", "--deploy", "--fail-level", "WARNING")


def test_json_serializer_is_the_default():
    assert check_token_serializer() == []


def test_pickle_serializer_is_a_warning(redis_server):
    caches = caches_at(redis_server.url)
    caches["default"]["OPTIONS"].pop("SERIALIZER")
    with override_settings(CACHES=caches):
        assert ids(check_token_serializer()) == ["tokens.W005"]


def test_the_real_redis_version_is_read_and_passes(redis_server):
    # What the test Redis says of itself: "Redis server v=7.0.15 sha=...".
    said = subprocess.run([shutil.which("redis-server"), "--version"], capture_output=True,
                          text=True, check=True).stdout
    with override_settings(CACHES=caches_at(redis_server.url)):
        version = store.redis_version()
    assert f"v={version} " in said
    assert redis_version_warnings(version) == []


@pytest.mark.parametrize("version", ["6.2.14", "6.0.0", "5.0.7", "6.2"])
def test_redis_older_than_7_is_a_warning(version):
    assert ids(redis_version_warnings(version)) == ["tokens.W010"]


@pytest.mark.parametrize("version", ["7.0.0", "7.0.15", "7.2", "8.0.2", "10.1.0", ""])
def test_redis_7_or_later_or_unknown_passes(version):
    assert redis_version_warnings(version) == []


def test_redis_refusing_info_is_judged_on_its_settings_alone(redis_with):
    server = redis_with("--rename-command", "INFO", '""', "--appendonly", "yes",
                        "--maxmemory-policy", "noeviction")
    assert check_against(server.url) == []
