"""`make mutants`: mutation testing of the Lua scripts (mutation/lua.py) and of the Python
modules that implement the README's guarantees (mutmut, mutation/python.py). Writes
mutants/report.md (report-lua.md, report-python.md for one part), prints the survivors, and exits non-zero if one of them is not on the
list of accepted survivors (mutation/accepted.txt: equivalent mutants, a reason each).

    python -m mutation.run [--lua-only | --python-only] [--sample N] [--workers N]
                           [--only GLOB ...] [--no-system] [--report-only]
"""

import argparse
import re
import sys
import time
from collections import Counter
from pathlib import Path

from mutation import lua, python

ROOT = Path(__file__).resolve().parent.parent
ACCEPTED = ROOT / "mutation" / "accepted.txt"
LUA_RESULTS = ROOT / "mutants" / "lua.json"
REPORT = ROOT / "mutants" / "report{}.md"  # report.md, or report-lua.md of --lua-only...
SURVIVED = {"survived", "no tests"}  # "prose" (a message's wording) is not run, "timeout" kills


def accepted() -> dict[str, str]:
    """id -> reason, from lines `<id> <reason>` (blank lines and # comments skipped)."""
    result = {}
    for number, line in enumerate(ACCEPTED.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"((?:lua|py)-[0-9a-f]{10})\s+(\S.*)", line)
        if not match:
            raise SystemExit(f"{ACCEPTED}:{number}: not `<id> <reason>`: {line}")
        result[match[1]] = match[2]
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    part = parser.add_mutually_exclusive_group()
    part.add_argument("--lua-only", action="store_true")
    part.add_argument("--python-only", action="store_true")
    parser.add_argument("--sample", type=int, default=1,
                        help="run every N-th mutant only (by id: the same ones every time)")
    parser.add_argument("--workers", type=int, default=2, help="mutmut's processes")
    parser.add_argument("--only", nargs="+", metavar="GLOB",
                        help="Lua files (tokens/store/lua/rotate.lua) or mutmut names "
                             "(tokens.cookies.*) to mutate, instead of all")
    parser.add_argument("--no-system", action="store_true",
                        help="Lua survivors are not tried against the system tests")
    parser.add_argument("--report-only", action="store_true",
                        help="run nothing: report the results that mutants/ holds")
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # progress as it happens, also into a pipe
    started = time.monotonic()
    results = []  # (id, kind, status, description)
    lines = ["# Mutation testing (`make mutants`)", ""]

    if not args.lua_only:
        globs = [g for g in args.only or [] if not g.endswith(".lua")] or None
        if args.report_only:
            mutants, seconds = python.results(), 0.0
        elif not args.only or globs:
            mutants, seconds = python.run(sample=args.sample, workers=args.workers, only=globs)
        else:
            mutants = []
        if mutants:
            results += [(m.id, "py", m.status, m.describe()) for m in mutants]
            lines += _summary("Python (mutmut)", mutants, seconds)
    if not args.python_only:  # after mutmut's run, which starts by clearing mutants/
        paths = lua.lua_files()
        if args.only:
            paths = [p for p in paths if any(Path(g) == p or p.match(g) for g in args.only)]
        report = None
        if args.report_only:
            report = lua.load(LUA_RESULTS) if LUA_RESULTS.exists() else None
        elif paths:
            report = lua.run(paths, sample=args.sample, system=not args.no_system)
            lua.save(report, LUA_RESULTS)
        if report:
            results += [(m.id, "lua", m.status, m.describe()) for m in report.mutants]
            lines += _summary("Lua scripts", report.mutants, report.seconds)

    ok = accepted()
    survivors = [r for r in results if r[2] in SURVIVED]
    new = [r for r in survivors if r[0] not in ok]
    lines += [f"Survivors: {len(survivors)}, of which accepted: {len(survivors) - len(new)}, "
              f"not accepted: {len(new)}. Took {time.monotonic() - started:.0f} s.", ""]
    for title, rows in (("Not accepted", new),
                        ("Accepted", [r for r in survivors if r[0] in ok])):
        lines += [f"## {title}", ""]
        lines += [f"- {i} ({status}) {what}" + (f"\n  accepted: {ok[i]}" if i in ok else "")
                  for i, _, status, what in rows] or ["(none)"]
        lines.append("")
    # Only a full run can tell that an accepted survivor is gone (killed, or its line changed).
    full = not (args.only or args.lua_only or args.python_only or args.sample > 1
                or args.report_only)
    gone = sorted(set(ok) - {r[0] for r in survivors})
    if gone and full:
        lines += ["## On the accepted list but no longer surviving (remove them)", ""]
        lines += [f"- {i}" for i in gone] + [""]
    out = Path(str(REPORT).format(
        "-lua" if args.lua_only else "-python" if args.python_only else ""))
    out.parent.mkdir(exist_ok=True)
    out.write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"(written to {out.relative_to(ROOT)})")
    return 1 if new else 0


def _summary(title: str, mutants, seconds: float) -> list[str]:
    counts = Counter(m.status for m in mutants)
    return [f"## {title}", "", f"{len(mutants)} mutants in {seconds:.0f} s: "
            + ", ".join(f"{n} {status}" for status, n in counts.most_common()), ""]


if __name__ == "__main__":
    sys.exit(main())
