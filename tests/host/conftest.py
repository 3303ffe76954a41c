"""A host project that is not this one: the app's wheel installed into a fresh virtualenv,
a project made by `django-admin startproject`, its own user model and DRF defaults, served
by `runserver` on a loopback port against a Redis and a database of its own.

Every process of the host runs with deprecation warnings as errors: RemovedInDjango60Warning
is a DeprecationWarning and RemovedInDjango61Warning a PendingDeprecationWarning (Django 5.2
defines no RemovedInDjango70Warning; `-W` cannot name Django's classes, whose module is not
importable when Python reads its options).
"""

import functools
import http.cookiejar
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path

import pytest

from tests.servers import PostgresServer, RedisServer, free_port

ROOT = Path(__file__).resolve().parents[2]
PROJECT_FILES = Path(__file__).resolve().parent / "project"
# `make package-venv` makes it: build and twine, never in the project's own virtualenv.
PACKAGE_PYTHON = ROOT / "var" / "package-venv" / "bin" / "python"
WARNINGS_AS_ERRORS = ("-W", "error::DeprecationWarning", "-W", "error::PendingDeprecationWarning")
PASSWORD = "a host's password, long enough 4711"
NEW_PASSWORD = "the host user's new password 0815"
CLIENT_TIMEOUT = 30  # seconds: a hung server fails the test instead of hanging it


@dataclass(frozen=True)
class Variant:
    """One host: its user model, its database, and the extras it installed."""

    users: str  # "email" (USERNAME_FIELD = "email") or "mti" (multi-table inheritance)
    database: str  # "postgresql" or "sqlite"
    extras: str = ""  # "metrics,docs", or none

    @property
    def id(self) -> str:
        return "-".join(filter(None, (self.users, self.database, self.extras.replace(",", "+"))))

    @property
    def user_model(self) -> str:
        return "people.User" if self.users == "email" else "people.Member"

    @property
    def extra_apps(self) -> str:
        return "drf_spectacular drf_spectacular_sidecar" if "docs" in self.extras else ""

    def login_name(self, name: str) -> str:
        """What the user types as "username" at login: an email address, or a username."""
        return f"{name}@host.example" if self.users == "email" else name


# Each user model on each database; each database with and without the extras.
VARIANTS = [
    Variant("email", "postgresql"),
    Variant("mti", "sqlite"),
    Variant("email", "sqlite", "metrics,docs"),
    Variant("mti", "postgresql", "metrics,docs"),
]
# One user per test that logs in, so that no test sees another's sessions; and the admin.
USERS = ("alice", "bob", "carol", "dave", "erin", "frank")
ADMIN = "root"


def clean_env() -> dict:
    """This process's environment without what points at this project (pytest-django's
    DJANGO_SETTINGS_MODULE, its virtualenv): the host's programs see only their own."""
    return {key: value for key, value in os.environ.items()
            if not key.startswith(("DJANGO_", "PYTHON", "VIRTUAL_ENV"))}


def run(command: list, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, timeout=300,
                            env=clean_env(), **kwargs)
    if result.returncode:
        raise AssertionError(f"{' '.join(map(str, command))} exited {result.returncode}:\n"
                             f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="session")
def dist(tmp_path_factory) -> Path:
    """A folder with the sdist and the wheel built from this tree, as `make package` builds
    them (the wheel from the sdist)."""
    if not PACKAGE_PYTHON.exists():
        pytest.fail("No build virtualenv: run `make package-venv` (or `make test`).")
    out = tmp_path_factory.mktemp("dist")
    run([PACKAGE_PYTHON, "-m", "build", "--outdir", out, ROOT])
    return out


@pytest.fixture(scope="session")
def wheel(dist) -> Path:
    (built,) = dist.glob("django_rotating_tokens-*.whl")
    return built


@pytest.fixture(scope="session")
def host_python(wheel):
    """The interpreter of a fresh virtualenv holding the wheel (with these extras), its
    dependencies as pip resolves them today, and psycopg; one per set of extras, removed
    when the tests end."""
    base = Path(tempfile.mkdtemp(prefix="tokens-host-venvs-"))

    @functools.cache
    def make(extras: str) -> Path:
        venv = base / (extras.replace(",", "-") or "plain")
        run([sys.executable, "-m", "venv", venv])
        python = venv / "bin" / "python"
        requirement = f"{wheel}[{extras}]" if extras else str(wheel)
        run([python, "-m", "pip", "install", "--quiet", requirement, "psycopg[binary]"])
        return python

    yield make
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres():
    try:
        server = PostgresServer.start()
    except FileNotFoundError as exc:
        pytest.fail(f"{exc}: run `make postgresql` (or `make test`).")
    yield server
    server.stop()


@dataclass
class Reply:
    status: int
    headers: Message
    raw: bytes

    @property
    def body(self):
        return json.loads(self.raw) if self.raw else None

    @property
    def code(self) -> str | None:
        body = self.body
        return body.get("code") if isinstance(body, dict) else None

    def __repr__(self) -> str:
        return f"Reply({self.status}, {self.raw[:500]!r})"


class NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a 3xx is the reply, as for a fetch() with redirect: "manual"


class Client:
    """One user agent with its own cookie jar, which sends a cookie only where a browser
    would: to the paths under its Path, over HTTPS only when Secure."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.cookies = http.cookiejar.CookieJar()
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.cookies), NoRedirects)

    def call(self, method: str, path: str, body=None, *, token: str | None = None,
             raw: bytes | None = None, content_type: str = "application/json",
             headers: dict | None = None) -> Reply:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        request = urllib.request.Request(f"{self.base}{path}", data=data, method=method,
                                         headers=headers or {})
        if data is not None:
            request.add_header("Content-Type", content_type)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with self._opener.open(request, timeout=CLIENT_TIMEOUT) as response:
                return Reply(response.status, response.headers, response.read())
        except urllib.error.HTTPError as error:
            return Reply(error.code, error.headers, error.read())

    def cookie(self, name: str) -> http.cookiejar.Cookie | None:
        return next((cookie for cookie in self.cookies if cookie.name == name), None)


@dataclass
class Host:
    variant: Variant
    directory: Path  # where manage.py is
    python: Path
    env: dict
    port: int = 0
    server: subprocess.Popen | None = None
    log: Path | None = None
    user_ids: dict = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def manage(self, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
        command = [self.python, *WARNINGS_AS_ERRORS, "manage.py", *args]
        result = subprocess.run(command, cwd=self.directory, env={**self.env, **env},
                                capture_output=True, text=True, timeout=300)
        if check and result.returncode:
            raise AssertionError(f"manage.py {' '.join(args)} exited {result.returncode}:\n"
                                 f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return result

    def client(self) -> Client:
        return Client(self.base)

    def login_name(self, name: str) -> str:
        return self.variant.login_name(name)

    def start(self, attempts: int = 3) -> None:
        for _ in range(attempts):
            self.port = free_port()
            self.log = self.directory / f"runserver-{self.port}.log"
            with self.log.open("w") as out:
                self.server = subprocess.Popen(
                    [self.python, *WARNINGS_AS_ERRORS, "manage.py", "runserver", "--noreload",
                     f"127.0.0.1:{self.port}"],
                    cwd=self.directory, env=self.env, stdout=out, stderr=subprocess.STDOUT)
            if self._wait_until_ready():
                return
            if "already in use" not in self.log.read_text():
                raise RuntimeError(f"runserver did not start:\n{self.log.read_text()[-3000:]}")
        raise RuntimeError("runserver found no free port")

    def _wait_until_ready(self, seconds: float = 60) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self.server.poll() is None:
            try:
                self.client().call("GET", "/whoami/")
                return True
            except OSError:
                time.sleep(0.1)
        self.stop()
        return False

    def server_log(self) -> str:
        return self.log.read_text(errors="replace") if self.log else ""

    def stop(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.terminate()
            try:
                self.server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait(timeout=10)


def make_project(variant: Variant, python: Path, directory: Path) -> Path:
    """`django-admin startproject`, then what a developer adds: the people app with the user
    model of `variant`, the settings and the URLs."""
    directory.mkdir()
    run([python.parent / "django-admin", "startproject", "hostsite", directory])
    people = directory / "people"
    shutil.copytree(PROJECT_FILES / "people", people,
                    ignore=shutil.ignore_patterns("models_*.py", "__pycache__"))
    shutil.copy(PROJECT_FILES / "people" / f"models_{variant.users}.py", people / "models.py")
    (people / "migrations").mkdir()
    (people / "migrations" / "__init__.py").touch()
    shutil.copy(PROJECT_FILES / "urls.py", directory / "hostsite" / "urls.py")
    settings = directory / "hostsite" / "settings.py"
    settings.write_text(
        settings.read_text() + (PROJECT_FILES / "settings_tail.py").read_text()
        + f'\nAUTH_USER_MODEL = "{variant.user_model}"\n'
        # A host that predates BigAutoField: the app's migrations must not drift under it.
        + ('DEFAULT_AUTO_FIELD = "django.db.models.AutoField"\n' if variant.users == "mti"
           else ""))
    return directory


CREATE_USERS = """
import json, os
from django.contrib.auth import get_user_model
User = get_user_model()
names, admin, password, email_login = json.loads(os.environ["HOST_USERS"])
ids = {}
for name in names + [admin]:
    fields = {"email": f"{name}@host.example", "password": password}
    if not email_login:
        fields["username"] = name
    if name == admin:
        user = User.objects.create_superuser(**fields)
    else:
        user = User.objects.create_user(**fields)
    ids[name] = user.pk
print(json.dumps(ids))
"""


@pytest.fixture(scope="module", params=VARIANTS, ids=lambda variant: variant.id)
def host(request, host_python, postgres):
    """A host project of one variant, migrated, with its users, served on a loopback port."""
    variant: Variant = request.param
    python = host_python(variant.extras)
    directory = Path(tempfile.mkdtemp(prefix="tokens-host-"))
    redis_server = RedisServer.start("--appendonly", "yes")
    env = clean_env()
    env.update({
        "DJANGO_SETTINGS_MODULE": "hostsite.settings",
        "HOST_SECRET_KEY": secrets.token_urlsafe(50),
        "HOST_REDIS_URL": redis_server.url,
        "HOST_EXTRA_APPS": variant.extra_apps,
    })
    host = Host(variant, directory / "project", python, env)
    try:
        if variant.database == "postgresql":
            name = f"host_{variant.id.replace('-', '_').replace('+', '_')}"
            postgres.create_database(name)
            env.update({"HOST_DATABASE": "postgresql", "HOST_DB_NAME": name,
                        "HOST_DB_PORT": str(postgres.port)})
        make_project(variant, python, host.directory)
        host.manage("makemigrations", "people")
        host.manage("migrate", "--noinput")
        created = host.manage("shell", "-c", CREATE_USERS, HOST_USERS=json.dumps(
            [list(USERS), ADMIN, PASSWORD, variant.users == "email"]))
        host.user_ids = json.loads(created.stdout.strip().splitlines()[-1])
        host.start()
        yield host
    finally:
        host.stop()
        redis_server.stop()
        shutil.rmtree(directory, ignore_errors=True)
