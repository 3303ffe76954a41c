"""The reference web client in real Chromium: reloads, tabs, logouts, outages, other origins."""

import os
import signal
import time

import pytest

from tests.browser.conftest import (
    ACCESS_SECONDS, GUNICORN_CONFIG, REFRESH_PATH, log_in, me, open_demo, requests_to,
    session_id, wait_for_requests,
)
from tests.helpers import LOGOUT_ALL, PASSWORD
from tests.system.conftest import ROOT

pytestmark = pytest.mark.timeout(120)


def test_a_reload_restores_the_session_with_one_refresh_and_no_script_sees_the_token(
        context, api):
    page = open_demo(context, api)
    page.wait_for_function("auth.state.reason !== null")  # restore() found no session
    log_in(page)
    refresh_token = next(c["value"] for c in context.cookies() if c["name"] == "tokens_refresh")
    wait_for_requests(api, REFRESH_PATH, 1, status=401)  # that restore()
    page.reload()
    page.wait_for_function("window.auth && auth.state.status === 'logged-in'")
    wait_for_requests(api, REFRESH_PATH, 1, status=200)
    assert requests_to(api, REFRESH_PATH) == 2
    assert me(page)["body"]["username"] == "alice"
    new_token = next(c["value"] for c in context.cookies() if c["name"] == "tokens_refresh")
    seen = page.evaluate("""async () => {
        const reply = await auth.fetch("/api/auth/sessions/");
        return [document.cookie, JSON.stringify({...localStorage}),
                JSON.stringify({...sessionStorage}), await reply.text(),
                JSON.stringify((await indexedDB.databases()).map((d) => d.name)),
                document.documentElement.outerHTML].join("\\n");
    }""")
    assert refresh_token not in seen and new_token not in seen
    if os.environ.get("DEMO_SCREENSHOT"):  # `make demo-screenshot`: docs/demo.png
        page.click("#me")
        page.click("#sessions")
        page.wait_for_selector("#session-rows tr")
        page.screenshot(path=str(ROOT / "docs" / "demo.png"), full_page=True)


def expiry(page) -> int:
    return page.evaluate("auth.state.expiresAt")


def three_logged_in_tabs(context, api) -> list:
    """Three tabs of one browser on the demo page, logged in through the first."""
    first = open_demo(context, api)
    log_in(first)
    tabs = [first, open_demo(context, api), open_demo(context, api)]
    for tab in tabs[1:]:
        tab.wait_for_function("auth.state.status === 'logged-in'")
    return tabs


def next_expiry(tabs) -> None:
    """Wait until every tab holds a newer access token than any of them holds now: a refresh
    was just made, and the next is an expiry away."""
    latest = max(expiry(tab) for tab in tabs)
    for tab in tabs:
        tab.wait_for_function(f"auth.state.expiresAt > {latest}")


def test_three_tabs_make_one_refresh_per_expiry_and_all_keep_working(context, api, traffic):
    tabs = three_logged_in_tabs(context, api)
    wait_for_requests(api, REFRESH_PATH, 1, status=401)  # the first restore(): no cookie yet
    next_expiry(tabs)  # from here on, no refresh is on its way when an expiry begins
    for _ in range(3):  # three expiries
        # Every refresh answered so far, including those whose line the log has yet to get.
        before = traffic.answered[REFRESH_PATH]
        next_expiry(tabs)
        wait_for_requests(api, REFRESH_PATH, before + 1)
        assert [me(tab)["status"] for tab in tabs] == [200, 200, 200]
    assert requests_to(api, REFRESH_PATH, status=401) == 1  # never revoked


def test_a_logout_in_one_tab_logs_every_tab_out_and_stops_every_refresh(context, api,
                                                                        traffic):
    tabs = three_logged_in_tabs(context, api)
    first = tabs[0]
    first.click("#logout")
    for tab in tabs[1:]:
        tab.wait_for_function("auth.state.status === 'logged-out'", timeout=1000)
    assert [tab.evaluate("auth.state.reason") for tab in tabs] == ["logout"] * 3
    wait_for_requests(api, "/api/auth/cookie/logout/", 1, status=204)
    # Counted as the browser sends them: a refresh sent before the logout may be logged
    # after it.
    refreshes = traffic.sent[REFRESH_PATH]
    # Two access lifetimes (every timer would have fired), Playwright's events heard meanwhile.
    first.wait_for_timeout(2 * ACCESS_SECONDS * 1000)
    assert traffic.sent[REFRESH_PATH] == refreshes
    assert [me(tab)["status"] for tab in tabs] == [401, 401, 401]
    assert traffic.sent[REFRESH_PATH] == refreshes  # a 401 without a token: no refresh


def test_a_session_revoked_elsewhere_logs_the_page_out_with_the_reason(context, api):
    page = open_demo(context, api)
    log_in(page)
    wait_for_requests(api, REFRESH_PATH, 1, status=401)  # the page's restore(): no cookie yet
    other = api.login()  # alice on another device, in body mode
    assert api.call("POST", LOGOUT_ALL, token=other["access_token"]).status == 204
    assert me(page)["status"] == 401
    assert page.evaluate("auth.state") == {"status": "logged-out", "reason": "session_revoked",
                                           "expiresAt": None, "refreshAt": None}
    wait_for_requests(api, REFRESH_PATH, 2)  # one refresh for the refused call, no loop


def logged_in_page(context, api):
    page = open_demo(context, api)
    log_in(page)
    return page


def test_redis_down_makes_the_page_unavailable_not_logged_out_and_it_goes_on_after(
        context, project, api):
    page = logged_in_page(context, api)
    session = session_id(page)
    wait_for_requests(api, REFRESH_PATH, 1, status=401)  # the page's restore(): no cookie yet
    project.redis.kill()
    page.wait_for_function("auth.state.status === 'unavailable'")
    project.redis.restart()
    page.wait_for_function("auth.state.status === 'logged-in'", timeout=15_000)
    assert session_id(page) == session
    assert requests_to(api, REFRESH_PATH, status=401) == 1


def test_a_refresh_lost_in_a_redis_stall_longer_than_the_leeway_is_retried_not_a_logout(
        context, project):
    api = project.start_api(workers=1, config_file=GUNICORN_CONFIG, TOKENS_LEEWAY="2")
    page = logged_in_page(context, api)
    session = session_id(page)
    wait_for_requests(api, REFRESH_PATH, 1, status=401)  # the page's restore(): no cookie yet
    project.redis.process.send_signal(signal.SIGSTOP)
    try:
        # A refresh got a 503; Redis holds its rotation in the socket's buffer.
        page.wait_for_function("auth.state.status === 'unavailable'")
        context.set_offline(True)  # the page's retries wait until the leeway is over
    finally:
        project.redis.process.send_signal(signal.SIGCONT)
    # The page retries after the leeway, with the same Idempotency-Key. (Whether Redis ran a
    # buffered rotation meanwhile is not controlled here: tests/system/test_outage_recovery.py.)
    time.sleep(3)
    context.set_offline(False)
    page.wait_for_function("auth.state.status === 'logged-in'", timeout=15_000)
    assert session_id(page) == session
    assert requests_to(api, REFRESH_PATH, status=401) == 1
    assert requests_to(api, REFRESH_PATH, status=503) >= 1


def test_a_refresh_token_replayed_by_someone_else_logs_the_page_out(context, project):
    api = project.start_api(config_file=GUNICORN_CONFIG, TOKENS_LEEWAY="1")
    page = logged_in_page(context, api)
    stolen = next(c["value"] for c in context.cookies() if c["name"] == "tokens_refresh")
    page.wait_for_function(f"auth.state.expiresAt > {expiry(page)}")  # the page rotated it
    time.sleep(1.5)  # past the leeway
    replay = api.call("POST", REFRESH_PATH, headers={
        "Cookie": f"tokens_refresh={stolen}", "X-Requested-With": "thief"})
    assert (replay.status, replay.code) == (401, "token_reused")
    page.wait_for_function("auth.state.status === 'logged-out'")
    # The thief's replay got token_reused and ended the session; the page's own (current)
    # token then hears the same (the store keeps a reuse mark for the session's life).
    assert page.evaluate("auth.state.reason") == "token_reused"


def until(page, condition, seconds: float = 10) -> None:
    """Poll `condition` while Playwright handles the page's events (its route handlers)."""
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        page.wait_for_timeout(50)
    raise AssertionError("timed out")


def test_a_login_typed_while_the_page_restores_is_not_cancelled_by_its_answer(context, api):
    # The page load's restore() is still on its way (no session: it will be a 401) when the
    # user logs in (a slow server, a password manager's autofill); its answer arrives while
    # the login is in flight, and must not cancel it. Under load this raced in the other
    # browser tests too: a login that never completed.
    held = {}
    page = context.new_page()
    page.route(f"**{REFRESH_PATH}", lambda route: held.setdefault("restore", route))
    page.route("**/api/auth/cookie/token/", lambda route: held.setdefault("login", route))
    page.goto(f"{api.base}/demo/")
    page.wait_for_function("window.auth !== undefined")
    until(page, lambda: "restore" in held)
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("#login button")
    until(page, lambda: "login" in held)
    held["restore"].continue_()
    page.wait_for_function("auth.state.reason !== null")  # the restore's 401 is in
    try:
        held["login"].continue_()
    except Exception:  # noqa: BLE001 - the page gave the request up: the bug this is about
        pass
    page.wait_for_function("auth.state.status === 'logged-in'")
    page.unroute(f"**{REFRESH_PATH}")
    assert me(page)["status"] == 200
