"""Every system check problem has an id of its own (so SILENCED_SYSTEM_CHECKS can tell them
apart), and the checks are registered by the app's ready(), once."""

import re
from pathlib import Path

from django.core import checks

CHECKS = Path(__file__).resolve().parents[2] / "tokens" / "checks"


def test_no_check_id_names_two_problems():
    seen: dict[str, int] = {}
    for path in CHECKS.glob("*.py"):
        for found in re.findall(r'id="(tokens\.[EWI]\d{3})"', path.read_text()):
            seen[found] = seen.get(found, 0) + 1
        # An id chosen by a condition (id="...E009" if ... else "...E023"): its other one.
        for found in re.findall(r'id="tokens\.[EWI]\d{3}" if .+? else "(tokens\.[EWI]\d{3})"',
                                path.read_text()):
            seen[found] = seen.get(found, 0) + 1
    assert seen and {k: n for k, n in seen.items() if n > 1} == {}


def test_the_checks_are_registered_once_by_the_app():
    from tokens import checks as token_checks

    registered = [c for c in checks.registry.registry.get_checks(include_deployment_checks=True)
                  if c.__module__.startswith("tokens.")]
    names = sorted(c.__name__ for c in registered)
    assert names == sorted(name for name in token_checks.__all__ if name.startswith("check_"))
