"""Password reset requests across two API processes: the per-address limit holds against
parallel requests in every spelling of the address."""

from concurrent.futures import ThreadPoolExecutor

import pytest

pytestmark = pytest.mark.timeout(120)

RESET = "/api/auth/password/reset/"


def test_reset_limits_hold_across_processes_against_parallel_spellings(project):
    a, b = project.start_api(), project.start_api()
    spellings = ["alice@example.com", " Alice@example.com", "ALICE@EXAMPLE.COM",
                 "alice@Example.com ", "Alice@Example.Com", "aLiCe@example.com"]
    with ThreadPoolExecutor(max_workers=len(spellings)) as pool:
        replies = list(pool.map(
            lambda i: (a, b)[i % 2].call("POST", RESET, {"email": spellings[i]}),
            range(len(spellings))))
    assert sorted(r.status for r in replies) == [202] * 3 + [429] * 3
    assert {r.code for r in replies if r.status == 429} == {"throttled"}
