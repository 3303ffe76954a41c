"""pytest plugin of `make mutants` only (loaded with `-p mutation.pytest_plugin`), never of
`make test`.

- A test database per process: mutmut forks each mutant's run from one process, whose
  settings named the test database after its own pid, so two runs at once would share (and
  delete) one SQLite file.
- With MUTATION_SCRIPT_MAP set to a path, writes there which store scripts each test ran
  (JSON: test id -> script names), so that a Lua mutant runs only the tests that run it;
  with MUTATION_DURATIONS, how long each test took (to run the quick ones first).
"""

import json
import os
import tempfile
from collections import defaultdict

import pytest

_ran: dict[str, set[str]] = defaultdict(set)
_took: dict[str, float] = defaultdict(float)
_current: list[str] = []


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session):
    from django.db import connections

    test = connections["default"].settings_dict.setdefault("TEST", {})
    if connections["default"].settings_dict["ENGINE"] == "django.db.backends.sqlite3":
        test["NAME"] = os.path.join(tempfile.gettempdir(), f"tokens-mutants-{os.getpid()}.sqlite3")
    if os.environ.get("MUTATION_SCRIPT_MAP"):
        _record_script_runs()


def _record_script_runs() -> None:
    from redis.commands.core import Script

    from tokens.store import scripts

    names = {id(value): name.lower() for name, value in vars(scripts).items()
             if isinstance(value, Script)}
    call = Script.__call__

    def recording_call(self, *args, **kwargs):
        if _current and id(self) in names:
            _ran[_current[0]].add(names[id(self)])
        return call(self, *args, **kwargs)

    Script.__call__ = recording_call


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _current[:] = [item.nodeid]
    try:
        return (yield)
    finally:
        _current.clear()


def pytest_runtest_logreport(report):
    _took[report.nodeid] += report.duration


def pytest_sessionfinish(session):
    for variable, data in (("MUTATION_SCRIPT_MAP", {t: sorted(n) for t, n in _ran.items()}),
                           ("MUTATION_DURATIONS", _took)):
        if os.environ.get(variable):
            with open(os.environ[variable], "w") as out:
                json.dump(data, out, indent=0)
