"""Ratios, table and figure of ``bench_sampler.py``.

The figure is written by ``jax_smm.plots.save_figure``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from peers import IMPLEMENTATIONS

from jax_smm.plots import pyplot, save_figure


def ratios(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """``ours / numpy`` and ``ours / thrml`` rate ratios per K."""
    rate = {(r["implementation"], r["k"]): r["rate_m_updates_per_s"] for r in records}
    out: dict[str, dict[str, float]] = {}
    for k in sorted({r["k"] for r in records}):
        if ("ours", k) not in rate:
            continue
        out[str(k)] = {
            f"ours_over_{peer}": rate["ours", k] / rate[peer, k]
            for peer in ("numpy", "thrml")
            if (peer, k) in rate
        }
    return out


def format_table(records: Sequence[dict[str, Any]]) -> str:
    """Plain-text results table."""
    ratio = ratios(records)
    header = (
        f"{'implementation':<15}{'K':>3}{'M updates/s':>14}{'compile s':>11}"
        f"{'ours/numpy':>12}{'ours/thrml':>12}"
    )
    lines = [header, "-" * len(header)]
    for r in sorted(
        records, key=lambda r: (r["k"], IMPLEMENTATIONS.index(r["implementation"]))
    ):
        compile_s = "-" if r["compile_s"] is None else f"{r['compile_s']:.2f}"
        cells = ["-", "-"]
        if r["implementation"] == "ours":
            for i, peer in enumerate(("numpy", "thrml")):
                value = ratio.get(str(r["k"]), {}).get(f"ours_over_{peer}")
                cells[i] = "-" if value is None else f"{value:.2f}x"
        lines.append(
            f"{r['implementation']:<15}{r['k']:>3}"
            f"{r['rate_m_updates_per_s']:>14.1f}{compile_s:>11}"
            f"{cells[0]:>12}{cells[1]:>12}"
        )
    return "\n".join(lines)


def plot_throughput(records: Sequence[dict[str, Any]], title: str, path: Path) -> None:
    """Grouped bar chart of the rates (one group per K), log y axis."""
    plt = pyplot()

    ks = sorted({r["k"] for r in records})
    present = [
        i for i in IMPLEMENTATIONS if any(r["implementation"] == i for r in records)
    ]
    rate = {(r["implementation"], r["k"]): r["rate_m_updates_per_s"] for r in records}
    width = 0.8 / len(present)
    centers = np.arange(len(ks))
    fig, ax = plt.subplots(figsize=(7.0, 4.5), layout="constrained")
    for j, name in enumerate(present):
        values = [rate.get((name, k), np.nan) for k in ks]
        bars = ax.bar(
            centers + (j - (len(present) - 1) / 2) * width, values, width, label=name
        )
        ax.bar_label(bars, labels=[f"{v:.3g}" for v in values], fontsize=8)
    ax.set_yscale("log")
    ax.set_xticks(centers, [f"K = {k}" for k in ks])
    ax.set_ylabel("million variable updates / s")
    ax.set_title(title, fontsize=10)
    ax.legend()
    save_figure(fig, path)
