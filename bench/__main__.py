"""Run every benchmark suite and write docs/benchmarks.md with its plots.

``python -m bench --quick`` (CI profile, a few minutes; prints its verdicts) or
``python -m bench`` (the full profile behind the README's numbers, written to
docs/benchmarks.md). Each suite alternates its baseline and
Lightbox on the same data and re-measures the limit in the same run; this runner only
collects their JSON results. Exit status 1 when a suite reports a ratio that misses
its goal by more than 15 %, unless ``--report-only`` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
_RESULTS = _HERE / "results"
_DOCS = _HERE.parent / "docs"
SUITES = ("pixels", "sources", "first_image", "widgets", "hub_load")


def _latest(suite: str, since: float, profile: str = "*") -> dict[str, Any] | None:
    """The newest result of `suite` written at or after `since`, with its file name."""
    files = sorted(_RESULTS.glob(f"{suite}-{profile}-*.json"),
                   key=lambda p: p.stat().st_mtime)
    files = [f for f in files if f.stat().st_mtime >= since]
    if not files:
        return None
    result = json.loads(files[-1].read_text())
    result["_file"] = files[-1].name
    return result


def _rows(suite: str, result: dict[str, Any]) -> list[dict[str, Any]]:
    """Every suite's result as rows of workload, median, min, max, goal, verdict."""
    if suite == "hub_load":
        return [{"workload": f"{r['users']} users: p95 first image / one user",
                 "ratio_median": r["ratio_to_one_user"], "ratio_min": None,
                 "ratio_max": None, "goal": "< 2 up to 8 users",
                 "met": r["ratio_to_one_user"] < 2 or r["users"] > 8}
                for r in result["rows"]]
    rows = result.get("results")
    if isinstance(rows, list):
        return rows
    goals = result.get("goals", {})
    rows = {name: value if isinstance(value, dict) else {"median": value}
            for name, value in (rows or {}).items()}
    return [{"workload": name, "ratio_median": value.get("median"),
             "ratio_min": value.get("min"), "ratio_max": value.get("max"),
             "goal": value.get("goal", goals.get(name, "")),
             "met": value.get("met")} for name, value in rows.items()]


def _number(value: Any) -> str:
    return "" if value is None else f"{value:.3g}"


def _plot(suite: str, rows: list[dict[str, Any]], result: dict[str, Any]) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    _DOCS.joinpath("benchmarks").mkdir(parents=True, exist_ok=True)
    path = _DOCS / "benchmarks" / f"{suite}.png"
    figure, axes = plt.subplots(figsize=(8, 0.32 * len(rows) + 1.4))
    if suite == "hub_load":
        users = [r["users"] for r in result["rows"]]
        axes.plot(users, [r["p95_first_image_ms"] for r in result["rows"]], "o-",
                  label="p95 time to first image")
        axes.axhline(2 * result["rows"][0]["p95_first_image_ms"], color="grey",
                     linestyle="--", label="2x one user")
        axes.set_xlabel("simultaneous users")
        axes.set_ylabel("ms")
        axes.legend()
        figure.set_size_inches(7, 4)
    else:
        shown = [r for r in rows if isinstance(r.get("ratio_median"), (int, float))]
        labels = [str(r["workload"])[:60] for r in shown]
        colours = ["tab:green" if r.get("met") else "tab:red" for r in shown]
        axes.barh(range(len(shown)), [r["ratio_median"] for r in shown], color=colours)
        axes.set_yticks(range(len(shown)), labels, fontsize=7)
        axes.invert_yaxis()
        axes.set_xscale("log")
        axes.set_xlabel("median ratio (green: goal met)")
    axes.set_title(f"{suite} ({result.get('profile', '')} profile)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return f"benchmarks/{suite}.png"


def summary(results: dict[str, dict[str, Any]]) -> str:
    """One line per row of every suite: median, goal and verdict."""
    lines = []
    for suite, result in results.items():
        for r in _rows(suite, result):
            verdict = {True: "met", False: "MISSED", None: ""}[r.get("met")]
            lines.append(f"{suite:11} {_number(r.get('ratio_median')):>7}  "
                         f"{r.get('goal', ''):>14}  {verdict:6}  {r['workload']}")
    return "\n".join(lines)


def write_report(results: dict[str, dict[str, Any]], profile: str,
                 fresh: tuple[str, ...] = SUITES) -> Path:
    lines = ["# Benchmarks", "",
             "Written by `python -m bench` "
             f"({profile} profile) on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
             f" on {platform.machine()} with {os.cpu_count()} CPUs, load average "
             f"{', '.join(f'{v:.2f}' for v in os.getloadavg())} at the end.",
             "Each ratio is Lightbox against a baseline or limit measured in the same "
             "run, alternating pairs after a warm-up (median, min and max over the "
             "pairs). The machines are shared and noisy: the ratio decides, absolute "
             "times are for trends only.", ""]
    for suite, result in results.items():
        rows = _rows(suite, result)
        lines += [f"## {suite}", "", f"Result file: `bench/results/{result['_file']}`"
                  + (" (an earlier full run: this run measured only "
                     f"{', '.join(fresh)})" if suite not in fresh else "") + ".", ""]
        plot = _plot(suite, rows, result)
        if plot:
            lines += [f"![{suite}]({plot})", ""]
        lines += ["| workload | median | min | max | goal | met |",
                  "|---|---|---|---|---|---|"]
        for r in rows:
            verdict = {True: "yes", False: "no", None: ""}[r.get("met")]
            lines.append(f"| {r['workload']} | {_number(r.get('ratio_median'))} | "
                         f"{_number(r.get('ratio_min'))} | {_number(r.get('ratio_max'))}"
                         f" | {r.get('goal', '')} | {verdict} |")
        versions = result.get("versions", {})
        if versions:
            lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items())]
        lines.append("")
    _DOCS.mkdir(exist_ok=True)
    out = _DOCS / "benchmarks.md"
    out.write_text("\n".join(lines))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the short CI profile")
    parser.add_argument("--report-only", action="store_true",
                        help="always exit 0; only write the report")
    parser.add_argument("--suite", action="append", choices=SUITES,
                        help="run only these suites (repeatable)")
    arguments = parser.parse_args()
    started = time.time()
    failures = []
    results = {}
    for suite in arguments.suite or SUITES:
        print(f"== bench.{suite}", flush=True)
        command = [sys.executable, "-m", f"bench.{suite}"] + (
            ["--quick"] if arguments.quick else [])
        if suite == "first_image" and not arguments.quick:
            # The full profile also times the first paint in Chromium.
            command.append("--browser")
        code = subprocess.run(command, cwd=_HERE.parent).returncode
        result = _latest(suite, started)
        if result is None:
            failures.append(f"{suite}: wrote no result (exit {code})")
            continue
        results[suite] = result
        if code != 0:
            failures.append(f"{suite}: a ratio misses its goal by more than 15 %")
    if arguments.quick:
        # The CI gate: docs/benchmarks.md keeps the full profile's numbers.
        print(summary(results))
    else:
        fresh = tuple(results)
        # A run of some suites (--suite) reports the others from their latest
        # full run, each named with its result file.
        for suite in SUITES:
            if suite not in results:
                earlier = _latest(suite, 0.0, "full")
                if earlier is not None:
                    results[suite] = earlier
        results = {suite: results[suite] for suite in SUITES if suite in results}
        print(f"report: {write_report(results, 'full', fresh)}")
    for failure in failures:
        print(f"bench: {failure}")
    sys.exit(0 if arguments.report_only or not failures else 1)


if __name__ == "__main__":
    main()
