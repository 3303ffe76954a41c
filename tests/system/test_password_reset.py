"""Password reset requests against gunicorn: the per-address limit holds across two API
processes against parallel spellings; the connection ends before the mail server has said a
word (the email goes from a background thread); and no log line holds a reset link."""

import json
import re
import signal
import socket
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.smtp import SmtpSink
from tests.system.conftest import CLIENT_TIMEOUT, ROOT, wait_for

pytestmark = pytest.mark.timeout(120)

RESET = "/api/auth/password/reset/"
CONFIRM = "/api/auth/password/reset/confirm/"
GUNICORN_CONFIG = ROOT / "config" / "gunicorn.conf.py"  # its access log, in ApiServer.log
FRONTEND = "https://app.example.test/reset#{uid}/{token}"
LINK = re.compile(r"reset#(?P<uid>[A-Za-z0-9_-]+)/(?P<token>[A-Za-z0-9-]+)")


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


def raw_post(port: int, path: str, body: dict, timeout: float = CLIENT_TIMEOUT) -> bytes:
    """POST over a plain socket; everything the server sent until it closed the connection."""
    data = json.dumps(body).encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head + data)
        received = b""
        while chunk := sock.recv(65536):  # a timeout raises: the connection did not end
            received += chunk
    return received


def give_alice_an_email(project) -> None:
    project.manage("shell", "-c", "from django.contrib.auth import get_user_model; "
                   "get_user_model().objects.filter(username='alice')"
                   ".update(email='alice@example.com')")


@pytest.fixture
def hung_mail_server():
    sink = SmtpSink.start(held=True)
    yield sink
    sink.stop()


def api_mailing_to(project, mail_server):
    """gunicorn as shipped, sending reset emails to `mail_server`; alice has an address."""
    give_alice_an_email(project)
    return project.start_api(workers=1, config_file=GUNICORN_CONFIG,
                             DJANGO_EMAIL_HOST="127.0.0.1", DJANGO_EMAIL_PORT=str(mail_server.port),
                             DJANGO_EMAIL_USE_TLS="0", DJANGO_PASSWORD_RESET_URL=FRONTEND)


def test_the_connection_ends_before_the_mail_server_answers_and_no_log_holds_the_link(
        project, hung_mail_server):
    api = api_mailing_to(project, hung_mail_server)
    # The mail server has not even greeted: the worker used to wait for it (EMAIL_TIMEOUT,
    # 10 s) before it closed the connection.
    reply = raw_post(api.port, RESET, {"email": "alice@example.com"}, timeout=5)
    assert reply.startswith(b"HTTP/1.1 202 ") and b'"reset_requested"' in reply
    assert hung_mail_server.messages == []
    hung_mail_server.release()
    [message] = hung_mail_server.wait_for_messages(1)
    assert message["To"] == "alice@example.com"
    link = LINK.search(message.get_content()).groupdict()
    assert api.call("POST", CONFIRM, {**link, "new_password": "123"}).code == "invalid"
    assert api.call("POST", CONFIRM, {**link, "new_password": "a much better one 42"}).status == 204
    # The access line is written after the body is sent: wait for it.
    wait_for(lambda: f'"POST {CONFIRM} HTTP/1.1" 204' in api.log.read_text())
    log = api.log.read_text()
    assert link["token"] not in log and link["uid"] + "/" not in log


def test_an_email_still_on_its_way_when_gunicorn_stops_is_sent_before_the_worker_exits(
        project, hung_mail_server):
    api = api_mailing_to(project, hung_mail_server)
    assert api.call("POST", RESET, {"email": "alice@example.com"}).status == 202
    api.process.send_signal(signal.SIGTERM)
    wait_for(lambda: "Worker exiting" in api.log.read_text())  # now draining its queue
    assert api.process.poll() is None
    hung_mail_server.release()
    assert hung_mail_server.wait_for_messages(1)[0]["To"] == "alice@example.com"
    assert api.process.wait(timeout=30) == 0


def test_without_smtp_no_email_reaches_the_log(project):
    # `make serve` without DJANGO_EMAIL_HOST (DEBUG off) used to print each reset email,
    # link and all, to gunicorn's stdout.
    give_alice_an_email(project)
    api = project.start_api(workers=1, config_file=GUNICORN_CONFIG,
                            DJANGO_PASSWORD_RESET_URL=FRONTEND)
    assert api.call("POST", RESET, {"email": "alice@example.com"}).status == 202
    wait_for(lambda: "Password reset email not sent" in api.log.read_text())
    log = api.log.read_text()
    assert "dummy.EmailBackend) sends nothing" in log
    assert "Reset your password" not in log and "reset#" not in log
