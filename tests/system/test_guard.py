"""The guard against silent stores (README), where it matters: on gunicorn, which runs no system
checks, with the checks that refuse such a cache silenced as well. A token cache that would
lose tokens silently is refused on every token endpoint (503), and nothing is stored: not in
the cache, and not in the real Redis that the configurations ignoring errors point at."""

import pytest
import redis

from tests.system.conftest import every_store_endpoint, start_project

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def shared():
    """One project for the file, and a pair of alice's tokens signed with its key, from a
    server with the project's own store (so every endpoint is reached with valid tokens)."""
    project = start_project()
    try:
        server = project.start_api(workers=1)
        pair = server.login()
        server.stop()
        yield project, pair
    finally:
        project.stop()


# Selected by tests/system/settings.py (TOKENS_TEST_SILENT_STORE).
@pytest.mark.parametrize("store", ["locmem", "dummy", "ignore-exceptions",
                                   "global-ignore-exceptions", "missing-alias"])
def test_a_silent_token_store_is_refused_on_every_endpoint(shared, store):
    project, pair = shared
    conn = redis.Redis(port=project.redis.port)
    conn.flushdb()  # alice's session above: a guard that let a request through would show
    api = project.start_api(workers=1, TOKENS_TEST_SILENT_STORE=store)
    try:
        replies = every_store_endpoint(api, pair)
    finally:
        api.stop()
    assert replies == dict.fromkeys(replies, (503, "token_store_unavailable"))
    assert conn.dbsize() == 0
