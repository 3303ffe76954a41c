"""Real Chromium (Debian's /usr/bin/chromium, never a browser Playwright downloads) against
real gunicorn and redis-server processes: the demo page and tokens/static/tokens/client.js.

Requests are counted on the server, from gunicorn's access log (config/gunicorn.conf.py),
which has a request's line only once the response is sent: a page may see an answer before
its line is there, so a count waits for it (`wait_for_requests`). When a request was sent
or answered, as against the last line logged, is seen in the browser (`traffic`)."""

import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import sync_playwright

from tests.helpers import PASSWORD
from tests.system.conftest import ROOT, start_project, wait_for

ACCESS_SECONDS = 4  # the servers' access lifetime: the client refreshes every 2 s
REFRESH_PATH = "/api/auth/cookie/refresh/"
GUNICORN_CONFIG = ROOT / "config" / "gunicorn.conf.py"


@pytest.fixture(scope="package")
def browser():
    """The system's Chromium, for this package only: Playwright's sync API runs an asyncio
    loop while it is open, and Django refuses database calls under one (the later tests)."""
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("chromium not found: `make chromium` (Debian: apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def project():
    # AOF on every write: a Redis killed and restarted keeps its sessions.
    project = start_project("--appendonly", "yes", "--appendfsync", "always",
                            TOKENS_DEMO_PAGE="on", TOKENS_ACCESS_SECONDS=str(ACCESS_SECONDS),
                            TOKENS_LOGIN_LIMITS="off")
    yield project
    project.stop()


@pytest.fixture
def api(project):
    return project.start_api(workers=3, config_file=GUNICORN_CONFIG)


@pytest.fixture
def context(browser):
    context = browser.new_context()
    context.set_default_timeout(10_000)
    yield context
    context.close()


def requests_to(api, path: str, status: int | None = None, method: str = "[A-Z]+") -> int:
    """How many requests for `path` the server logged (with that status and method, when
    given)."""
    pattern = re.compile(rf'"{method} {re.escape(path)} HTTP/[\d.]+" (\d+) ')
    return sum(1 for m in pattern.finditer(api.log.read_text())
               if status is None or int(m.group(1)) == status)


def wait_for_requests(api, path: str, count: int, status: int | None = None,
                      method: str = "[A-Z]+") -> None:
    """Wait (10 s at most) until the server has logged `count` requests for `path` (as
    `requests_to` counts them), then check that it logged no more."""
    wait_for(lambda: requests_to(api, path, status, method) >= count)
    assert requests_to(api, path, status, method) == count


@dataclass
class Traffic:
    """The requests the browser sent and the answers it received, by path, in every tab of
    one context, as Playwright reports them (while a Playwright call runs)."""

    sent: Counter = field(default_factory=Counter)
    answered: Counter = field(default_factory=Counter)


@pytest.fixture
def traffic(context) -> Traffic:
    seen = Traffic()
    context.on("request", lambda request: seen.sent.update([urlsplit(request.url).path]))
    context.on("requestfinished",
               lambda request: seen.answered.update([urlsplit(request.url).path]))
    return seen


def open_demo(context, api):
    page = context.new_page()
    page.goto(f"{api.base}/demo/")
    page.wait_for_function("window.auth !== undefined")
    return page


def status_of(page) -> str:
    return page.evaluate("auth.state.status")


def log_in(page) -> None:
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("#login button")
    page.wait_for_function("auth.state.status === 'logged-in'")


def me(page) -> dict:
    """What /api/auth/me/ answers the page (through the client): status and body."""
    return page.evaluate("""async () => {
        const reply = await auth.fetch("/api/auth/me/");
        return {status: reply.status, body: await reply.json()};
    }""")


def session_id(page) -> str:
    """The id of the page's current session, from the sessions list."""
    return page.evaluate("async () => (await auth.sessions()).find((s) => s.current).id")


