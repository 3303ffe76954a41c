"""bench/results.md from the numbers bench/run.py measured."""

import statistics
from pathlib import Path

SCENARIOS = ["ping", "me", "me (session check off)", "refresh", "obtain (fast hasher)",
             "obtain (default hasher)"]


def _row(name: str, result: dict | None) -> str:
    if result is None:
        return "– | – | – | –"
    errors = f"**{result['errors']} errors**" if result["errors"] else "0"
    return (f"{result['rps']:,.0f} | {result['p50_ms']:.2f} | {result['p99_ms']:.2f} | "
            f"{errors}")


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "–"


def write_markdown(results: dict, path: Path) -> None:
    m, ours, peer = results["machine"], results["ours"], results["simplejwt"]
    lines = [
        "# Benchmark results",
        "",
        f"Made by `make bench` on {m['date']}: {m['cores']} cores ({m['cpu']}), Python "
        f"{m['python']}, Redis {m['redis']}, Django {m['django']}, DRF "
        f"{m['djangorestframework']}, simplejwt {m['djangorestframework-simplejwt']}, "
        f"wrk {m['wrk']}.",
        "",
        f"- Server: {m['server']}; database: {m['database']}; Redis on loopback.",
        f"- Client: {m['client']} (the client takes CPU from the server).",
        f"- {m['runs']}. Every non-2xx response and socket error counts as an error.",
        "",
        "## Throughput and latency",
        "",
        "| scenario | ours req/s | p50 ms | p99 ms | errors | simplejwt req/s | p50 ms | p99 ms "
        "| errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in SCENARIOS:
        lines.append(f"| {name} | {_row(name, ours.get(name))} | {_row(name, peer.get(name))} |")
    def paired(a: dict, b: dict) -> list[float]:
        # Ratios within each round: both sides ran minutes apart at most, under the same drift.
        return [x["rps"] / y["rps"] for x, y in zip(a["runs"], b["runs"])]

    targets = [
        ("refresh >= 4x simplejwt's refresh with blacklist", "x", 4.0,
         paired(ours["refresh"], peer["refresh"])),
        ("refresh >= 50% of ping", "%", 0.5, paired(ours["refresh"], ours["ping"])),
        ("me with session check >= 90% of me without", "%", 0.9,
         paired(ours["me"], ours["me (session check off)"])),
        ("me >= 90% of simplejwt's me", "%", 0.9, paired(ours["me"], peer["me"])),
    ]
    lines += [
        "",
        "## Against the targets",
        "",
        "Each ratio is taken within a round, then the median of the rounds is reported; the",
        "per-round values show how much this machine's speed moves between rounds.",
        "",
        "| target | median | per round | met |",
        "|---|---:|---|---|",
    ]
    for label, unit, goal, ratios in targets:
        def show(value: float) -> str:
            return f"{value:.2f}x" if unit == "x" else f"{100 * value:.0f}%"

        median = statistics.median(ratios)
        lines.append(f"| {label} | {show(median)} | {', '.join(show(r) for r in ratios)} | "
                     f"{'yes' if median >= goal else 'no'} |")
    errors = sum(r["errors"] for t in (ours, peer) for r in t.values())
    lines += [
        f"| no errors in any run | {errors} errors | | {'no' if errors else 'yes'} |",
        f"| (for reference) simplejwt refresh / its ping | "
        f"{100 * statistics.median(paired(peer['refresh'], peer['ping'])):.0f}% | | |",
        "",
        "## Counted costs of one request",
        "",
        "Deterministic; `tests/tokens/test_costs.py` fails if ours rise.",
        "",
        "| request | ours SQL | ours Redis round trips | simplejwt SQL (inserts) |",
        "|---|---:|---:|---:|",
    ]
    counts = results["counts"]
    for kind in ("obtain", "refresh", "me", "logout"):
        o, p = counts["ours"].get(kind), counts["simplejwt"].get(kind)
        peer_cell = f"{p['sql']} ({p['inserts']})" if p else "–"
        lines.append(f"| {kind} | {o['sql']} | {o['redis_round_trips']} | {peer_cell} |")
    memory = results["memory"]
    parts = ", ".join(f"{size} for the {key.rsplit(':', 1)[-1]} key"
                      for key, size in memory["memory_usage_one_session"].items())
    lines += [
        "",
        "## Redis memory per live session",
        "",
        f"- `MEMORY USAGE` of one session's keys (its hash and its user's index): "
        f"{memory['memory_usage_one_session_total']} bytes ({parts}).",
        f"- `used_memory` delta over {memory['sessions']:,} sessions, one per user: "
        f"{memory['used_memory_delta_per_session']:.0f} bytes per session.",
        "",
    ]
    notes = Path(__file__).with_name("NOTES.md")
    if notes.exists():
        lines += [notes.read_text().strip(), ""]
    path.write_text("\n".join(lines))
