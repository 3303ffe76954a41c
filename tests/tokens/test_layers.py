"""The app's layers hold (the import-linter contracts in .importlinter, run by `make test`):
and below the API and the admin, nothing speaks HTTP (django.http, which import-linter
cannot name: it forbids only whole external packages)."""

import ast
from pathlib import Path

import pytest

TOKENS = Path(__file__).resolve().parents[2] / "tokens"
BELOW_HTTP = ["services", "store", "jwt.py", "users.py", "models.py", "signing_keys.py",
              "metrics.py", "clock.py", "background.py", "text.py", "signals.py", "types.py",
              "conf.py", "exceptions.py"]


def imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize("part", BELOW_HTTP)
def test_nothing_below_the_api_imports_django_http(part):
    target = TOKENS / part
    files = sorted(target.rglob("*.py")) if target.is_dir() else [target]
    assert files
    for path in files:
        http = {m for m in imported_modules(path)
                if m == "django.http" or m.startswith("django.http.")}
        assert not http, f"{path.relative_to(TOKENS.parent)} imports {http}"
