"""`manage.py check --deploy` reads the token Redis: eviction, persistence, reachability."""

import pytest
from django.test import override_settings

from tests.helpers import caches_at
from tests.servers import RedisServer, free_port
from tokens.checks import check_token_redis, check_token_serializer


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
    assert ids(check_against(f"redis://127.0.0.1:{free_port()}/0")) == ["tokens.W003"]


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
