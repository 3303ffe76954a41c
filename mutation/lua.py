"""Mutation testing of the store's Lua scripts (tokens/store/lua/*.lua and lib/*.lua): one
textual change at a time, made in the file itself, the tests that run that script, then the
file restored with git (also on Ctrl-C or SIGTERM). Refuses to start on a dirty lua/ folder.

Which tests run which script is recorded once (mutation/pytest_plugin.py) by an in-process
run of the suite, which must pass; a mutant of a lib/ file runs the tests of every script
that uses it. A mutant that survives those is tried against the system tests named in
its script's SYSTEM_TESTS too (real gunicorn and redis-server processes).
"""

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LUA = Path("tokens/store/lua")
IN_PROCESS_TESTS = ["tests/tokens", "tests/accounts", "tests/test_logging.py"]
# What the scripts decide on real processes (stalls, lost replies and rotations, racing
# processes), which no recording in process sees: tried on a survivor of the tests above.
_OUTAGE, _SYSTEM = "tests/system/test_outage_recovery.py::", "tests/system/test_system.py::"
SYSTEM_TESTS = {
    "rotate": [_OUTAGE + "test_a_refresh_lost_in_a_long_stall_is_retried_and_a_replay_is_still_reuse",
               _OUTAGE + "test_a_refresh_lost_in_a_long_stall_is_retried_without_a_key_too",
               _OUTAGE + "test_rotations_lost_with_the_tail_of_the_aof_are_adopted",
               _SYSTEM + "test_replays_across_processes_inside_and_after_the_leeway",
               _SYSTEM + "test_racing_with_zero_leeway_has_one_winner_and_ends_the_session"],
    "create": [_OUTAGE + "test_a_login_that_answered_503_in_a_stall_leaves_no_session_behind"],
    "abandon": [_OUTAGE + "test_a_login_that_answered_503_in_a_stall_leaves_no_session_behind"],
    "restart": [_OUTAGE + "test_a_password_change_whose_reply_was_lost_is_retried_not_a_logout"],
    "reserve": [_SYSTEM + "test_login_limits_hold_across_processes_against_parallel_spellings",
                _SYSTEM + "test_the_address_limit_holds_across_processes"],
}
PYTEST = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
          "-p", "mutation.pytest_plugin", "--timeout=60"]
_USES = re.compile(r"^-- Uses: (.+)\.$", re.MULTILINE)
_STRING = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
# (pattern, replacement) pairs, each match outside strings and comments one mutant.
_REPLACEMENTS = [
    (r"<=", "<"), (r">=", ">"), (r"(?<![<>=~])<(?!=)", "<="), (r"(?<![<>=~-])>(?!=)", ">="),
    (r"==", "~="), (r"~=", "=="),
    (r"\band\b", "or"), (r"\bor\b", "and"), (r"\bnot\s+", ""),
    (r"\btrue\b", "false"), (r"\bfalse\b", "true"),
    (r"math\.max\b", "math.min"), (r"math\.min\b", "math.max"),
    (r"(?<=\s)\+(?=\s)", "-"), (r"(?<=\s)-(?=\s)", "+"),
    (r"(?<=\s)\*(?=\s)", "/"), (r"(?<=\s)/(?=\s)", "*"),
]
# Not inside [...]: a wrong index reads another argument or field, a wiring slip that any test
# of the script catches, not another decision; it would double the mutants (and the run).
_INDEX = re.compile(r"\[[^\[\]]*\]")
_NUMBER = re.compile(r"(?<![\w.])\d+(?![\w.])")
_RETURN = re.compile(r"\breturn\b(\s+)([^\n]*?)(\s+end\b|\s*$)")
# A call in statement position (not a value): at the start of a line, or after then/else/do.
_CALL = re.compile(r"(?:^|(?<=\bthen )|(?<=\belse )|(?<=\bdo ))\s*"
                   r"((?:redis\.call|table\.remove|unindex|shrink_index|keep_indexed)\()")


@dataclass
class Mutant:
    path: str
    line: int  # 1-based, where the change starts
    before: str  # the changed line(s) as they were, stripped
    after: str
    text: str  # the whole mutated file
    id: str = ""
    status: str = ""
    seconds: float = 0.0
    killed_by: str = ""

    def describe(self) -> str:
        return f"{self.path}:{self.line}: `{self.before}` -> `{self.after}`"


@dataclass
class Report:
    mutants: list[Mutant] = field(default_factory=list)
    seconds: float = 0.0


def _code_spans(line: str) -> list[tuple[int, int]]:
    """The parts of a line that are code: not in a string, not after a `--` comment."""
    spans, start = [], 0
    for m in _STRING.finditer(line):
        code = line[start:m.start()]
        if "--" in code:
            spans.append((start, start + code.index("--")))
            return spans
        spans.append((start, m.start()))
        start = m.end()
    rest = line[start:]
    spans.append((start, start + rest.index("--") if "--" in rest else len(line)))
    return spans


def _in_code(spans, start: int, end: int) -> bool:
    return any(a <= start and end <= b for a, b in spans)


def _in_index(line: str, start: int) -> bool:
    return any(m.start() < start < m.end() for m in _INDEX.finditer(line))


def _balanced_end(text: str, open_at: int) -> int:
    """Index just past the parenthesis that closes the one at `open_at` (strings skipped)."""
    depth, i = 0, open_at
    while i < len(text):
        c = text[i]
        if c in "'\"":
            m = _STRING.match(text, i)
            i = m.end() if m else i + 1
            continue
        depth += c == "("
        depth -= c == ")"
        i += 1
        if depth == 0:
            return i
    raise ValueError("unbalanced call")


def mutants_of(path: Path) -> Iterator[Mutant]:
    """Every single change the operators make to one file, in line order."""
    source = (ROOT / path).read_text()
    lines = source.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    for number, line in enumerate(lines, start=1):
        spans = _code_spans(line)
        changes = []
        for pattern, replacement in _REPLACEMENTS:
            for m in re.finditer(pattern, line):
                if _in_code(spans, m.start(), m.end()) and not _in_index(line, m.start()):
                    changes.append((m.start(), m.end(), replacement))
        for m in _NUMBER.finditer(line):
            if _in_code(spans, m.start(), m.end()) and not _in_index(line, m.start()):
                changes.append((m.start(), m.end(), str(int(m.group()) + 1)))
        for m in _RETURN.finditer(line):
            if not _in_code(spans, m.start(), m.start() + 6):
                continue
            value = m.group(2)
            if value in ("", "end"):  # a bare `return`: the early exit is skipped
                changes.append((m.start(), m.start() + 6, ""))
            elif value not in ("true", "false"):  # those are flipped above
                changes.append((m.start(2), m.end(2), "1" if value == "0" else "0"))
        for start, end, replacement in changes:
            mutated = line[:start] + replacement + line[end:]
            yield Mutant(str(path), number, line.strip(), mutated.strip(),
                         source[:offsets[number - 1]] + mutated + source[offsets[number]:])
        for m in _CALL.finditer(line):
            call_at = offsets[number - 1] + m.start(1)
            if not _in_code(spans, m.start(1), m.end(1)):
                continue
            end = _balanced_end(source, call_at + len(m.group(1)) - 1)
            removed = source[call_at:end]
            yield Mutant(str(path), number, " ".join(removed.split()), "(call removed)",
                         source[:call_at] + "\n" * removed.count("\n") + source[end:])


def all_mutants(paths: list[Path]) -> list[Mutant]:
    """Every mutant of these files, each with an id stable across unrelated edits: the file,
    the line's text before and after, and which occurrence of that same change it is."""
    result, seen = [], {}
    for path in paths:
        for mutant in mutants_of(path):
            key = (mutant.path, mutant.before, mutant.after)
            seen[key] = seen.get(key, 0) + 1
            raw = "\0".join([*key, str(seen[key])])
            mutant.id = "lua-" + hashlib.sha1(raw.encode()).hexdigest()[:10]
            result.append(mutant)
    return result


def scripts_using(path: Path) -> set[str]:
    """The scripts (names as in tokens/store/scripts.py) that run this file's code."""
    if path.parent.name != "lib":
        return {path.stem}
    users = set()
    for script in (ROOT / LUA).glob("*.lua"):
        uses = _USES.search(script.read_text())
        if uses and path.stem in [u.strip() for u in uses[1].split(",")]:
            users.add(script.stem)
    return users


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True,
                          text=True).stdout


def _run(tests: list[str], timeout: float, env: dict | None = None) -> tuple[str, str]:
    """Run pytest on `tests` in its own process group: ('passed' | 'failed' | 'timeout', the
    first failing test id)."""
    proc = subprocess.Popen([*PYTEST, *tests], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            env={**os.environ, **(env or {})})
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return "timeout", ""
    except BaseException:
        # Ctrl-C: the tests and the redis-servers they started go with us.
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    failed = re.search(r"^(?:FAILED|ERROR) (\S+)", out, re.MULTILINE)
    if proc.returncode == 0:
        return "passed", ""
    if proc.returncode in (1, 3) or failed:
        return "failed", failed[1] if failed else f"exit {proc.returncode}"
    raise RuntimeError(f"pytest could not run (exit {proc.returncode}):\n{out[-3000:]}")


def record_script_use() -> tuple[dict[str, set[str]], dict[str, float]]:
    """Run the in-process tests once, unmutated: which tests run each script, and how long
    each test takes. They must pass, or no verdict about a mutant would mean anything."""
    with tempfile.TemporaryDirectory() as tmp:
        map_path = Path(tmp) / "scripts.json"
        durations = Path(tmp) / "durations.json"
        for _ in (1, 2):  # once more: on a loaded machine a socket timeout can flake
            proc = subprocess.run([*PYTEST, *IN_PROCESS_TESTS], cwd=ROOT, capture_output=True,
                                  text=True, env={**os.environ,
                                                  "MUTATION_SCRIPT_MAP": str(map_path),
                                                  "MUTATION_DURATIONS": str(durations)})
            if proc.returncode == 0:
                break
        else:
            raise RuntimeError(f"the unmutated tests fail:\n{proc.stdout[-3000:]}")
        ran = json.loads(map_path.read_text())
        took = json.loads(durations.read_text())
    tests_by_script: dict[str, set[str]] = {}
    for test, scripts in ran.items():
        for script in scripts:
            tests_by_script.setdefault(script, set()).add(test)
    return tests_by_script, took


def run(paths: list[Path], *, sample: int = 1, system: bool = True, log=print) -> Report:
    """Mutate `paths` one change at a time (every `sample`-th mutant, by id, if sample > 1);
    a survivor of the in-process tests meets its script's SYSTEM_TESTS too if `system`."""
    if _git("status", "--porcelain", "--", str(LUA)).strip():
        raise SystemExit(f"{LUA} has changes that are not committed: refusing to mutate it "
                         "(a mutant is undone with `git checkout`, which would lose them)")
    started = time.monotonic()
    mutants = all_mutants(paths)
    if sample > 1:
        mutants = [m for m in mutants if int(m.id[4:], 16) % sample == 0]
    log(f"Lua: {len(mutants)} mutants of {len(paths)} files; recording which tests run "
        "which script...")
    tests_by_script, took = record_script_use()
    stop = _stop_on_sigterm()
    try:
        for n, mutant in enumerate(mutants, start=1):
            _try(mutant, tests_by_script, took, system)
            log(f"  [{n}/{len(mutants)}] {mutant.status:8} {mutant.seconds:5.1f}s "
                f"{mutant.id} {mutant.describe()}")
    finally:
        signal.signal(signal.SIGTERM, stop)
    return Report(mutants, time.monotonic() - started)


def _try(mutant: Mutant, tests_by_script: dict[str, set[str]], took: dict[str, float],
         system: bool) -> None:
    path = ROOT / mutant.path
    scripts = scripts_using(Path(mutant.path))
    tests = sorted(set().union(*(tests_by_script.get(s, set()) for s in scripts)),
                   key=lambda t: took.get(t, 0.0))
    system_tests = sorted(set().union(*(SYSTEM_TESTS.get(s, []) for s in scripts)))
    began = time.monotonic()
    if not tests:
        mutant.status = "no tests"
        return
    path.write_text(mutant.text)
    try:
        # Generous: several times what the tests take unmutated, plus the start-up.
        outcome, by = _run(tests, timeout=30 + 4 * sum(took.get(t, 0.0) for t in tests))
        if outcome == "passed" and system and system_tests:
            outcome, by = _run(system_tests, timeout=300)
    finally:
        _git("checkout", "--", mutant.path)
    mutant.status = {"passed": "survived", "failed": "killed", "timeout": "timeout"}[outcome]
    mutant.killed_by = by
    mutant.seconds = time.monotonic() - began


def _stop_on_sigterm():
    """SIGTERM becomes KeyboardInterrupt, so that the `finally` that restores a file runs."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt
    return signal.signal(signal.SIGTERM, interrupt)


def save(report: Report, path: Path) -> None:
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps({"seconds": report.seconds, "mutants": [
        {k: v for k, v in vars(m).items() if k != "text"} for m in report.mutants]}, indent=1))


def load(path: Path) -> Report:
    data = json.loads(path.read_text())
    return Report([Mutant(text="", **m) for m in data["mutants"]], data["seconds"])


def lua_files() -> list[Path]:
    return sorted((LUA).glob("*.lua")) + sorted((LUA / "lib").glob("*.lua"))
