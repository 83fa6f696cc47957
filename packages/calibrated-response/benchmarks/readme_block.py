"""The README's benchmark table, generated from ``results/large_problem.json``.

The benchmark rewrites the block between ``START`` and ``END`` in the package
README after every saved run, and a test checks the README against the saved
JSON, so the README's numbers are never typed by hand.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

START, END = "<!-- bench:large -->", "<!-- /bench:large -->"
README = Path(__file__).resolve().parents[1] / "README.md"


def render(result: dict[str, Any]) -> str:
    """The markdown table of one results JSON."""
    runs = result["fit_seconds_runs"]
    goal = result["goal"]
    times = " / ".join(f"{s:.1f}" for s in runs)
    median = statistics.median(runs)
    time_met = "met" if median < goal["fit_seconds"] else "NOT met"
    error_met = "met" if result["max_error"] < goal["max_error"] else "NOT met"
    run = result["run"]
    return "\n".join(
        [
            f"{result['variables']:,} variables, {result['estimates']:,} estimates "
            f"({result['skipped']} skipped), {result['factors']:,} factors; "
            f"{run['machine']['cpu_count']}-core CPU, jax {run['versions']['jax']} "
            f"({run['machine']['backend']}):",
            "",
            "| | measured | goal |",
            "|---|---:|---:|",
            f"| fit time (adapt, compile, fit and read-out) | **{times} s** "
            f"({len(runs)} run{'s' * (len(runs) > 1)}, median {median:.1f} s) | "
            f"< {goal['fit_seconds']} s: {time_met} |",
            f"| max constraint error | **{result['max_error']:.5f}** (fixed seed) | "
            f"< {goal['max_error']}: {error_met} |",
            f"| 95th percentile / mean error | {result['p95_error']:.4f} / "
            f"{result['mean_error']:.4f} | |",
        ]
    )


def replace_block(text: str, block: str) -> str:
    """``text`` with the part between the markers replaced by ``block``."""
    head, sep, rest = text.partition(START)
    if not sep or END not in rest:
        raise ValueError(f"the README has no {START} ... {END} block")
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{block}\n{END}{tail}"


def current_block(text: str) -> str:
    """The part of ``text`` between the markers."""
    return text.partition(START)[2].partition(END)[0].strip("\n")
