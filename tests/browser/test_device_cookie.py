"""Cookie tossing in real Chromium: a page on a sibling subdomain (evil.example.test) sets a
junk device cookie for the parent domain. The victim's browser on example.test, which logged
in before, keeps its own budget after an attacker has exhausted the username's: over plain
HTTP because every device cookie it sends is read, over HTTPS because the device cookie is a
`__Host-` cookie no sibling can set. Host names reach loopback by Chromium's resolver rules."""

import datetime
import ipaddress
import shutil
import ssl
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.browser.conftest import GUNICORN_CONFIG
from tests.helpers import ME, OBTAIN, PASSWORD
from tests.system.conftest import ApiServer, start_project

pytestmark = pytest.mark.timeout(90)

SITE, SIBLING = "example.test", "evil.example.test"
RESOLVER = f"--host-resolver-rules=MAP {SITE} 127.0.0.1, MAP *.{SITE} 127.0.0.1"
# What the sibling's page tosses: junk under every name and Path it can, for the parent
# domain. The Path=/ one is sent after the victim's own cookie (older, same Path), the others
# before it (longer Paths first); a browser refuses the `__Host-` one (it names a Domain).
TOSS = f"""<!doctype html><meta charset="utf-8"><title>sibling</title><script>
for (const [name, path] of [["tokens_device", "/"], ["tokens_device", "/api/auth/token/"],
                            ["tokens_device", "/api/"], ["__Host-tokens_device", "/"]]) {{
  const secure = location.protocol === "https:" ? "; Secure" : "";
  document.cookie = `${{name}}=junk; Domain={SITE}; Path=${{path}}${{secure}}`;
}}
window.tossed = true;
</script>""".encode()


class Sibling(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(TOSS)))
        self.end_headers()
        self.wfile.write(TOSS)

    def log_message(self, *args):
        pass


@dataclass
class HttpsApiServer(ApiServer):
    """gunicorn serving TLS itself (GUNICORN_CMD_ARGS names the certificate), as the API is
    reached behind a TLS proxy with DJANGO_HTTPS=1."""

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def wait_until_ready(self, seconds: float = 30) -> None:
        unverified = ssl._create_unverified_context()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self.process.poll() is None:
            if "Connection in use" in self.log.read_text():
                break
            try:
                urllib.request.urlopen(f"{self.base}{ME}", timeout=2, context=unverified)
            except urllib.error.HTTPError as error:
                if error.code == 401:
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn did not start:\n{self.log.read_text()[-2000:]}")


def certificate(directory) -> tuple[str, str]:
    """A self-signed certificate for the site and its subdomains: (cert file, key file)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SITE)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName(SITE), x509.DNSName(f"*.{SITE}"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_file), str(key_file)


@pytest.fixture(scope="module")
def resolving_browser(browser):
    """Chromium with example.test and its subdomains on loopback."""
    launched = browser.browser_type.launch(executable_path=shutil.which("chromium"),
                                           args=["--no-sandbox", RESOLVER])
    yield launched
    launched.close()


@pytest.fixture(params=["http", "https"])
def scheme(request):
    return request.param


@pytest.fixture
def project():
    # Login limits on (the browser package's own project turns them off).
    project = start_project()
    yield project
    project.stop()


@pytest.fixture
def tls(project):
    return certificate(project.directory)


@pytest.fixture
def api(project, scheme, tls):
    env = {"DJANGO_ALLOWED_HOSTS": f"{SITE},127.0.0.1"}
    if scheme == "http":
        return project.start_api(config_file=GUNICORN_CONFIG, **env)
    cert, key = tls
    server = HttpsApiServer.start(
        project.env(DJANGO_HTTPS="1", GUNICORN_CMD_ARGS=f"--certfile={cert} --keyfile={key}",
                    **env),
        project.directory, workers=2, config_file=GUNICORN_CONFIG)
    project.servers.append(server)
    return server


@pytest.fixture
def sibling(scheme, tls):
    """The origin of the page on the sibling subdomain, over the API's scheme."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Sibling)
    if scheme == "https":
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"{scheme}://{SIBLING}:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def new_context(browser):
    context = browser.new_context(ignore_https_errors=True)  # the self-signed certificate
    context.set_default_timeout(10_000)
    return context


def log_in(page, password: str = PASSWORD) -> int:
    """The status of alice's login from the page, on the API's own origin."""
    return page.evaluate("""async ([path, password]) => (await fetch(path, {
        method: "POST", headers: {"Content-Type": "application/json"},
        body: JSON.stringify({username: "alice", password})})).status""", [OBTAIN, password])


def test_a_cookie_tossed_from_a_sibling_subdomain_locks_no_one_out(resolving_browser, api,
                                                                   sibling, scheme):
    site = f"{scheme}://{SITE}:{api.port}"
    victim = new_context(resolving_browser)
    page = victim.new_page()
    page.goto(f"{site}{ME}")
    assert log_in(page) == 200  # the victim's device cookie

    tossing = victim.new_page()
    tossing.goto(sibling)
    tossing.wait_for_function("window.tossed === true")
    tossed = [(c["name"], c["path"]) for c in victim.cookies()
              if c["domain"] == f".{SITE}" and c["value"] == "junk"]
    assert sorted(tossed) == [("tokens_device", "/"), ("tokens_device", "/api/"),
                              ("tokens_device", "/api/auth/token/")]

    # Someone else exhausts alice's budget: her right password from a new browser waits.
    attacker = new_context(resolving_browser).new_page()
    attacker.goto(f"{site}{ME}")
    assert [log_in(attacker, "wrong") for _ in range(5)] == [401] * 5
    assert log_in(attacker) == 429

    assert log_in(page) == 200  # the browser that logged in before still does
    own = [c for c in victim.cookies() if c["domain"] == SITE and "device" in c["name"]]
    if scheme == "https":
        assert [(c["name"], c["secure"], c["path"]) for c in own] == [
            ("__Host-tokens_device", True, "/")]
    else:
        assert [c["name"] for c in own] == ["tokens_device"]
    victim.close()
