"""The demo page as the reset page of development (`make run`): a link carrying uid and
token in its fragment, `/demo/#reset=<uid>/<token>`, sets a new password in Chromium, and
the token reaches no request line and no log."""

import os
import re
from urllib.parse import urlsplit

import pytest

from tests.browser.conftest import GUNICORN_CONFIG, open_demo, wait_for_requests
from tests.helpers import NEW_PASSWORD
from tests.smtp import SmtpSink
from tests.system.conftest import ROOT

pytestmark = pytest.mark.timeout(120)

RESET_URL = "https://app.example.test/demo/#reset={uid}/{token}"  # opened on the test server


@pytest.fixture
def mail_server():
    sink = SmtpSink.start()
    yield sink
    sink.stop()


@pytest.fixture
def reset_api(project, mail_server):
    project.manage("shell", "-c", "from django.contrib.auth import get_user_model; "
                   "get_user_model().objects.filter(username='alice')"
                   ".update(email='alice@example.com')")
    return project.start_api(workers=2, config_file=GUNICORN_CONFIG,
                             DJANGO_EMAIL_HOST="127.0.0.1",
                             DJANGO_EMAIL_PORT=str(mail_server.port), DJANGO_EMAIL_USE_TLS="0",
                             DJANGO_PASSWORD_RESET_URL=RESET_URL)


def test_the_demo_page_sets_a_new_password_from_the_links_fragment(context, reset_api,
                                                                   mail_server):
    page = open_demo(context, reset_api)
    page.fill("#forgot input[name=email]", "alice@example.com")
    page.click("#forgot button")
    page.wait_for_function("document.getElementById('forgot-result').textContent !== ''")
    assert "on its way" in page.text_content("#forgot-result")
    [message] = mail_server.wait_for_messages(1)
    [link] = re.findall(r"https://app\.example\.test/\S+", message.get_content())
    token = re.fullmatch(r".*#reset=[A-Za-z0-9_-]+/([A-Za-z0-9-]+)", link).group(1)
    parts = urlsplit(link)

    page = context.new_page()  # as a click in the email would
    page.goto(f"{reset_api.base}{parts.path}#{parts.fragment}")
    page.wait_for_selector("#reset:not([hidden])")
    assert page.url == f"{reset_api.base}/demo/"  # the link left the address bar at once
    page.fill("#reset-form input[name=new_password]", "123")
    page.click("#reset-form button")
    page.wait_for_function("document.getElementById('reset-result').textContent !== ''")
    assert page.text_content("#reset-result").startswith("refused: invalid (")
    page.fill("#reset-form input[name=new_password]", NEW_PASSWORD)
    page.click("#reset-form button")
    page.wait_for_function("document.getElementById('reset-result').textContent"
                           ".startsWith('password set')")
    if os.environ.get("DEMO_SCREENSHOT"):
        (ROOT / "var").mkdir(exist_ok=True)
        page.screenshot(path=str(ROOT / "var" / "demo-reset.png"), full_page=True)

    page.fill("#login input[name=username]", "alice")
    page.fill("#login input[name=password]", NEW_PASSWORD)
    page.click("#login button")
    page.wait_for_function("auth.state.status === 'logged-in'")
    wait_for_requests(reset_api, "/api/auth/password/reset/confirm/", 1, 204, "POST")
    wait_for_requests(reset_api, "/demo/", 2, 200, "GET")
    assert token not in reset_api.log.read_text()
