"""Metrics under gunicorn's several workers, with config/gunicorn.conf.py (as `make serve`):
each worker counts in its own file, one scrape adds them up, a restart counts from zero;
/metrics answers only an allowed address or the bearer secret."""

import http.client
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import OBTAIN, PASSWORD
from tests.system.conftest import CLIENT_TIMEOUT, ROOT, start_project

GUNICORN_CONFIG = ROOT / "config" / "gunicorn.conf.py"
SECRET = "system-test-scraper-secret-0123456789"
LOGIN_SUCCESS = '"tokens_logins_total"'


@pytest.fixture
def project():
    project = start_project(TOKENS_LOGIN_LIMITS="off")
    project.metrics_dir = project.directory / "metrics"
    yield project
    project.stop()


def start(project):
    return project.start_api(workers=2, config_file=GUNICORN_CONFIG,
                             PROMETHEUS_MULTIPROC_DIR=str(project.metrics_dir),
                             DJANGO_METRICS_ALLOWED_IPS="127.0.0.2",
                             DJANGO_METRICS_BEARER_TOKEN=SECRET)


def request(port, method, path, body=None, source="127.0.0.1", headers=None):
    """One request from a chosen loopback address; (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT,
                                      source_address=(source, 0))
    try:
        conn.request(method, path, body=json.dumps(body) if body else None,
                     headers={"Content-Type": "application/json", **(headers or {})})
        reply = conn.getresponse()
        return reply.status, reply.read()
    finally:
        conn.close()


def successes_per_worker(directory) -> list[float]:
    """Each worker's own count of successful logins, read from its file."""
    counts = []
    for path in sorted(directory.glob("counter_*.db")):
        counts.append(sum(value for key, value, *_ in
                          MmapedDict.read_all_values_from_file(str(path))
                          if LOGIN_SUCCESS in key and '"success"' in key))
    return counts


def scraped_successes(port, **how) -> float:
    status, body = request(port, "GET", "/metrics", **how)
    assert status == 200, body
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name == "tokens_logins_total" and sample.labels == {"outcome": "success"}:
                return sample.value
    raise AssertionError("tokens_logins_total not scraped")


def login(port):
    status, _ = request(port, "POST", OBTAIN, {"username": "alice", "password": PASSWORD})
    assert status == 200


def test_two_workers_add_up_in_one_scrape_and_a_restart_starts_from_zero(project):
    api = start(project)
    sent = 0
    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(25):  # bounded: until both workers have served logins
            list(pool.map(lambda _: login(api.port), range(4)))
            sent += 4
            per_worker = successes_per_worker(project.metrics_dir)
            if len(per_worker) == 2 and all(per_worker):
                break
    assert len(per_worker) == 2 and all(per_worker), per_worker
    assert sum(per_worker) == sent
    assert scraped_successes(api.port, source="127.0.0.2") == sent
    api.stop()

    api = start(project)
    assert scraped_successes(api.port, headers={"Authorization": f"Bearer {SECRET}"}) == 0


def test_metrics_are_refused_from_another_address_and_with_a_wrong_secret(project):
    api = start(project)
    for headers in ({}, {"Authorization": f"Bearer {SECRET[:-1]}"},
                    {"Authorization": "Bearer "}):
        status, body = request(api.port, "GET", "/metrics", source="127.0.0.1", headers=headers)
        assert (status, json.loads(body)["code"]) == (403, "permission_denied")
    assert request(api.port, "GET", "/metrics", source="127.0.0.2")[0] == 200
