"""The distribution (pyproject.toml): the tokens app alone, with every file it loads at run
time, metadata that twine accepts, and the extras it promises."""

import tarfile
import zipfile
from email.parser import Parser

from tests.host.conftest import PACKAGE_PYTHON, run

# Files the app reads at run time besides its modules: one of each kind.
DATA_FILES = {
    "tokens/store/lua/rotate.lua",
    "tokens/store/lua/lib/clock.lua",
    "tokens/templates/tokens/demo.html",
    "tokens/templates/admin/tokens/user_sessions.html",
    "tokens/static/tokens/client.js",
    "tokens/migrations/0001_initial.py",
    "tokens/management/commands/revoke_sessions.py",
}


def test_twine_accepts_the_sdist_and_the_wheel(dist):
    files = sorted(dist.iterdir())
    assert {path.suffix for path in files} == {".gz", ".whl"}
    run([PACKAGE_PYTHON, "-m", "twine", "check", "--strict", *files])


def test_the_wheel_holds_the_app_and_nothing_else(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert DATA_FILES <= names
    top = {name.split("/")[0] for name in names}
    assert top == {"tokens", f"{'-'.join(wheel.name.split('-')[:2])}.dist-info"}, top
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]


def test_the_sdist_holds_the_app_and_nothing_of_the_project(dist):
    (sdist,) = dist.glob("*.tar.gz")
    names = {name.split("/", 1)[1] for name in tarfile.open(sdist).getnames() if "/" in name}
    assert DATA_FILES <= names
    assert not [name for name in names
                if name.startswith(("config/", "accounts/", "tests/", "bench/", "docs/"))]


def test_the_metadata_names_the_supported_versions_and_the_extras(wheel):
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [name for name in archive.namelist() if name.endswith("/METADATA")]
        message = Parser().parsestr(archive.read(metadata).decode())
    assert message["Name"] == "django-rotating-tokens"
    assert message["Requires-Python"] == ">=3.11"
    assert {"Framework :: Django :: 5.2", "Programming Language :: Python :: 3.11"} <= set(
        message.get_all("Classifier"))
    requires = message.get_all("Requires-Dist")
    assert "django<6.0,>=5.2" in [r.lower() for r in requires], requires
    assert set(message.get_all("Provides-Extra")) == {"metrics", "docs"}
    assert any(r.startswith("prometheus-client") and "extra == 'metrics'" in r for r in requires)
    assert any(r.startswith("drf-spectacular") and "extra == 'docs'" in r for r in requires)
