"""The admin's Sessions page in real Chromium at a normal width: the user's change page keeps
its layout, one session is revoked by its own button, all of them after a confirmation."""

import os

import pytest

from tests.helpers import OBTAIN, PASSWORD
from tests.system.conftest import ROOT

pytestmark = pytest.mark.timeout(90)

AGENTS = ("Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0",
          "Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) Mobile/15E148 Safari/604.1",
          "curl/8.14.1")


@pytest.fixture
def admin_page(project, api, context):
    """Chromium at 1280 px, logged in to the admin as a superuser."""
    project.manage("shell", "-c", "from django.contrib.auth import get_user_model; "
                   f"get_user_model().objects.create_superuser('root', password={PASSWORD!r})")
    page = context.new_page()
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"{api.base}/admin/login/")
    page.fill("input[name=username]", "root")
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    return page


def log_alice_in(api, agent: str) -> dict:
    reply = api.call("POST", OBTAIN, {"username": "alice", "password": PASSWORD},
                     headers={"User-Agent": agent})
    assert reply.status == 200, reply
    return reply.body


def session_of(api, pair: dict) -> str:
    reply = api.call("GET", "/api/auth/sessions/", token=pair["access_token"])
    return next(s["id"] for s in reply.body if s["current"])


def refresh_code(api, pair: dict) -> str | None:
    """What refreshing the pair's token answers: None on success, else the error code."""
    reply = api.refresh(pair["refresh_token"])
    if reply.status == 200:
        pair.update(reply.body)
        return None
    return reply.code


def fieldset_headers(page) -> dict[str, dict]:
    """Each fieldset header's box height, the height of the band its colour paints on screen
    around it (a panel's background showing through the form makes it taller than the box),
    and one line of its text with padding and borders."""
    return page.evaluate("""() => {
        const painted = (x, y) => {  // the background colour seen at a point of the viewport
            for (const element of document.elementsFromPoint(x, y)) {
                const colour = getComputedStyle(element).backgroundColor;
                if (colour !== "rgba(0, 0, 0, 0)") return colour;
            }
            return null;
        };
        return Object.fromEntries([...document.querySelectorAll("fieldset h2")].map((h) => {
            h.scrollIntoView({block: "center"});
            const box = h.getBoundingClientRect(), x = box.left + 2;
            const colour = painted(x, box.top + box.height / 2);
            let top = box.top, bottom = box.bottom;
            while (top > box.top - 300 && painted(x, top - 1) === colour) top -= 1;
            while (bottom < box.bottom + 300 && painted(x, bottom + 1) === colour) bottom += 1;
            const text = document.createRange();
            text.selectNodeContents(h);
            const s = getComputedStyle(h);
            const line = ["paddingTop", "paddingBottom", "borderTopWidth", "borderBottomWidth"]
                .reduce((sum, name) => sum + parseFloat(s[name]),
                        text.getBoundingClientRect().height);
            return [h.textContent.trim(), {box: box.height, band: bottom - top, line}];
        }));
    }""")


def visible_message(page) -> str:
    message = page.locator("ul.messagelist li")
    assert message.count() == 1
    box = message.bounding_box()
    assert box is not None and 0 <= box["y"] and box["y"] + box["height"] <= 800  # in view
    return message.inner_text()


def test_an_admin_revokes_one_session_then_all_after_confirming(admin_page, api):
    page = admin_page
    pairs = [log_alice_in(api, agent) for agent in AGENTS]
    short = [session_of(api, pair)[:8] for pair in pairs]

    page.click("text=Users")
    page.click("#result_list >> text=alice")
    page.wait_for_url("**/change/")
    # The change page keeps Django's layout: every fieldset header one line tall.
    headers = fieldset_headers(page)
    assert {"Personal info", "Permissions", "Important dates"} <= set(headers)
    for header in headers.values():
        assert header["box"] <= header["line"] + 1 and header["band"] <= header["box"] + 1, headers
    page.evaluate("window.scrollTo(0, 0)")

    link = page.get_by_role("link", name="Sessions (3)")
    assert link.bounding_box()["y"] < 300  # at the top of the page, with History
    link.click()
    assert page.title().startswith("Sessions of alice")
    for session in short:
        assert page.locator(f"#result_list code:text-is('{session}')").count() == 1
    if os.environ.get("ADMIN_SCREENSHOT"):  # `make admin-screenshot`: docs/admin-sessions.png
        bottom = page.locator("#content").bounding_box()["height"] + 120  # below the header
        page.screenshot(path=str(ROOT / "docs" / "admin-sessions.png"),
                        clip={"x": 0, "y": 0, "width": 1280, "height": bottom})

    page.get_by_role("button", name=f"Revoke session {short[0]}").click()
    assert visible_message(page) == f"Revoked session {short[0]} of alice."
    assert page.locator("#result_list tbody tr").count() == 2
    assert refresh_code(api, pairs[0]) == "session_revoked"
    assert refresh_code(api, pairs[1]) is None

    page.get_by_role("link", name="Revoke all sessions").click()
    assert "Are you sure" in page.locator("#content").inner_text()
    assert refresh_code(api, pairs[2]) is None  # asking revoked nothing
    page.get_by_role("button", name="Yes, I’m sure").click()
    assert visible_message(page) == "Revoked 2 sessions of alice."
    assert page.get_by_text("No live sessions.").is_visible()
    assert [refresh_code(api, pair) for pair in pairs[1:]] == ["session_revoked"] * 2

    page.get_by_role("link", name="alice").click()  # the breadcrumb back to the user
    page.get_by_role("link", name="History").click()
    history = page.locator("#change-history tbody").inner_text()
    assert f"Revoked session {short[0]}." in history and "Revoked all sessions (2)." in history
