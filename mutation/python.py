"""Mutation testing of the Python modules that implement the README's guarantees, with
mutmut (its configuration: setup.cfg's [mutmut] section). mutmut copies the project into
mutants/, records which tests call each function, and runs a mutant only against those,
in a forked process with a timeout; results stay in mutants/ (`mutmut show NAME`,
`mutmut browse` from the project root).
"""

import contextlib
import fnmatch
import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
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
    chosen = mutants
    if sample > 1:
        chosen = [m for m in chosen if int(m.id[3:], 16) % sample == 0]
    if only:
        chosen = [m for m in chosen if any(fnmatch.fnmatch(m.name, g) for g in only)]
    log(f"Python: {len(chosen)} mutants (of {len(mutants)}) in "
        f"{len({m.path for m in mutants})} modules; mutmut runs them with {workers} workers...")
    names = [m.name for m in chosen] if len(chosen) < len(mutants) else []
    subprocess.run([*MUTMUT, "run", "--max-children", str(workers), *names], cwd=ROOT,
                   check=True)
    statuses = _statuses()
    for m in chosen:
        m.status = statuses.get(m.name, "not checked")
    return chosen, time.monotonic() - started


def _statuses() -> dict[str, str]:
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.stats import status_by_exit_code
    from mutmut.utils.file_utils import walk_mutatable_files

    result = {}
    for path in walk_mutatable_files():
        data = SourceFileMutationData(path=path)
        data.load()
        for name, code in data.exit_code_by_key.items():
            result[name] = status_by_exit_code[code]
    return result
