"""Mutation testing of the Python modules that implement the README's guarantees, with
mutmut (its configuration: setup.cfg's [mutmut] section). mutmut copies the project into
mutants/, records which tests call each function, and runs a mutant only against those,
in a forked process with a timeout; a survivor in a function that only a system test
reaches meets that test too (SYSTEM_TESTS). Results stay in mutants/ (`mutmut show NAME`,
`mutmut browse` from the project root).
"""

import contextlib
import fnmatch
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Functions that only a system test reaches (real gunicorn and redis-server processes, which
# mutmut's per-function record of in-process tests cannot see): their surviving mutants run
# these too, in mutants/ with the mutant switched on (MUTANT_UNDER_TEST reaches gunicorn).
SYSTEM_TESTS = {
    "tokens.services.login.x__abandon_later": [
        "tests/system/test_outage_recovery.py::"
        "test_a_login_that_answered_503_in_a_stall_leaves_no_session_behind"],
}
SYSTEM_RESULTS = ROOT / "mutants" / "python-system.json"
MUTMUT = [sys.executable, "-c", "import sys; from mutmut.__main__ import cli; sys.exit(cli())"]


@dataclass
class PyMutant:
    name: str  # mutmut's, e.g. tokens.cookies.x_check_csrf__mutmut_4
    path: str
    status: str
    before: str = ""
    after: str = ""
    id: str = ""

    def describe(self) -> str:
        function = self.name.rpartition(".")[2].partition("__mutmut_")[0]
        return f"{self.path} {function}: `{self.before}` -> `{self.after}`"


def _generate() -> list[tuple[str, str]]:
    """Write mutants/ (mutmut's copy of the project, every mutant in it); (name, path) each."""
    from mutmut.__main__ import create_mutants
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.utils.file_utils import (copy_also_copy_files, copy_src_dir, setup_source_paths,
                                         walk_mutatable_files)

    os.makedirs("mutants", exist_ok=True)
    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):  # a line a file
        copy_src_dir()
        copy_also_copy_files()
        setup_source_paths()
        create_mutants(2)
    names = []
    for path in walk_mutatable_files():
        data = SourceFileMutationData(path=path)
        data.load()
        names += [(name, str(path)) for name in data.exit_code_by_key]
    return names


def _diff(name: str, path: str) -> tuple[str, str]:
    """The lines a mutant changes, before and after, each stripped and joined."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    before, after = [], []
    for line in get_diff_for_mutant(name, path=path).splitlines():
        if line.startswith(("---", "+++")):
            continue
        if line.startswith("-"):
            before.append(line[1:].strip())
        elif line.startswith("+"):
            after.append(line[1:].strip())
    return " / ".join(before), " / ".join(after)


_LITERAL = re.compile(r"""(?<![\w"'])[rbfu]{0,2}("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')""")


def is_prose(before: str, after: str) -> bool:
    """Whether a mutant only rewrites the text of a string with a space in it ("XX" around
    it, upper or lower case): a message for people. Codes, names and keys have no space."""
    for m in _LITERAL.finditer(before):
        quoted = m.group(1)
        q, text = quoted[0], quoted[1:-1]
        if " " not in text:
            continue
        for changed in (f"XX{text}XX", text.upper(), text.lower()):
            if before[:m.start(1)] + q + changed + q + before[m.end(1):] == after:
                return True
    return False


def _with_ids(mutants: list[PyMutant]) -> None:
    """An id stable across unrelated edits: the file, the function, the lines changed (before
    and after) and which occurrence of that same change in the function it is."""
    seen: Counter = Counter()
    for m in mutants:
        m.before, m.after = _diff(m.name, m.path)
        function = m.name.rpartition(".")[2].partition("__mutmut_")[0]
        key = (m.path, function, m.before, m.after)
        seen[key] += 1
        raw = "\0".join([*key, str(seen[key])])
        m.id = "py-" + hashlib.sha1(raw.encode()).hexdigest()[:10]


def run(*, sample: int = 1, workers: int = 2, only: list[str] | None = None,
        log=print) -> tuple[list[PyMutant], float]:
    """A fresh mutmut run (mutants/ is rebuilt: its cache would keep verdicts made against
    tests or Lua files that have changed since). Every `sample`-th mutant by id if > 1;
    `only`: mutmut name globs (`tokens.cookies.*`)."""
    started = time.monotonic()
    os.chdir(ROOT)
    shutil.rmtree("mutants", ignore_errors=True)
    mutants = [PyMutant(name, path, "") for name, path in _generate()]
    _with_ids(mutants)
    prose = [m for m in mutants if is_prose(m.before, m.after)]
    for m in prose:
        m.status = "prose"
    chosen = [m for m in mutants if m.status != "prose"]
    if sample > 1:
        chosen = [m for m in chosen if int(m.id[3:], 16) % sample == 0]
    if only:
        chosen = [m for m in chosen if any(fnmatch.fnmatch(m.name, g) for g in only)]
    log(f"Python: {len(mutants)} mutants in {len({m.path for m in mutants})} modules, "
        f"{len(prose)} of them rewriting messages for people (not run); mutmut runs "
        f"{len(chosen)} with {workers} workers...")
    names = [m.name for m in chosen] if len(chosen) < len(mutants) else []
    subprocess.run([*MUTMUT, "run", "--max-children", str(workers), *names], cwd=ROOT,
                   check=True)
    _system_stage(results(), log)
    return results(), time.monotonic() - started


def _system_stage(mutants: list[PyMutant], log) -> None:
    verdicts = {}
    for m in mutants:
        tests = SYSTEM_TESTS.get(m.name.partition("__mutmut_")[0])
        if not tests or m.status not in ("survived", "no tests"):
            continue
        try:
            done = subprocess.run(
                [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                 "-p", "mutation.pytest_plugin", "--timeout=120", *tests],
                cwd=ROOT / "mutants", capture_output=True, text=True, timeout=600,
                env={**os.environ, "MUTANT_UNDER_TEST": m.name, "PY_IGNORE_IMPORTMISMATCH": "1"})
            verdicts[m.name] = {0: m.status, 1: "killed"}.get(done.returncode, "suspicious")
        except subprocess.TimeoutExpired:
            verdicts[m.name] = "timeout"
        log(f"  system tests: {verdicts[m.name]:8} {m.id} {m.describe()}")
    SYSTEM_RESULTS.write_text(json.dumps(verdicts, indent=1))


def results() -> list[PyMutant]:
    """The mutants of the last run that mutants/ holds: those it ran, and the prose ones."""
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.stats import status_by_exit_code
    from mutmut.utils.file_utils import walk_mutatable_files

    os.chdir(ROOT)
    mutants = []
    for path in walk_mutatable_files():
        data = SourceFileMutationData(path=path)
        data.load()
        mutants += [PyMutant(name, str(path), status_by_exit_code[code])
                    for name, code in data.exit_code_by_key.items()]
    _with_ids(mutants)
    system = json.loads(SYSTEM_RESULTS.read_text()) if SYSTEM_RESULTS.exists() else {}
    for m in mutants:
        m.status = system.get(m.name, m.status)
        if is_prose(m.before, m.after):
            m.status = "prose"
    return [m for m in mutants if m.status != "not checked"]
