"""Command line: ``calibrated-response fit problem.json --out DIR``.

Reads a JSON problem (variables, estimates and optional config), fits the
maximum-entropy distribution, and writes ``marginals.json``,
``constraints.csv`` (stated vs achieved value of every estimate, and the skipped
ones with their reason) and ``marginals.png`` (one panel per variable, the
estimates marked). Every file is written atomically.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from calibrated_response.maxent_smm import DistributionBuilder, SMMConfig
from calibrated_response.models import (
    EstimateUnion,
    HistogramDistribution,
    VariableUnion,
)
from jax_smm.diagnostics import atomic_write, save_figure

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


class Problem(BaseModel):
    """The JSON input: ``{"variables": [...], "estimates": [...], "config": {...}}``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    variables: list[VariableUnion]
    estimates: list[EstimateUnion]
    config: SMMConfig = SMMConfig()


def load_problem(path: Path) -> Problem:
    """Parse and validate a problem file; errors name the offending JSON path."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ValueError(f"{path}: cannot read: {err.strerror}") from None
    try:
        return Problem.model_validate_json(text)
    except ValidationError as err:
        lines = [
            f"  at {'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}"
            for e in err.errors()
        ]
        raise ValueError(f"{path}: invalid problem\n" + "\n".join(lines)) from None


def marginals_payload(
    marginals: dict[str, HistogramDistribution], info: dict[str, Any]
) -> dict[str, Any]:
    """The content of ``marginals.json``."""
    return {
        "target_variable": info["target_variable"],
        "variables": {
            name: {
                "bin_edges": list(h.bin_edges),
                "bin_probabilities": list(h.bin_probabilities),
                "mean": h.mean,
                "std": h.variance**0.5,
                "quantiles": {str(q): float(h.quantile(q)) for q in QUANTILES},
            }
            for name, h in marginals.items()
        },
        "constraint_satisfaction": info["constraint_satisfaction"],
        "skipped_constraints": info["skipped_constraints"],
        "fit_seconds": info["fit_seconds"],
    }


def constraints_csv(problem: Problem, info: dict[str, Any]) -> str:
    """One row per estimate: stated vs achieved, or why it was skipped."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "estimate_type", "target", "achieved", "error", "skipped"])
    sat = info["constraint_satisfaction"]
    skipped = {s["estimate_id"]: s["reason"] for s in info["skipped_constraints"]}
    for e in problem.estimates:
        row = sat.get(e.id, {})
        writer.writerow(
            [
                e.id,
                e.estimate_type,
                row.get("target", ""),
                "" if row.get("achieved") is None else f"{row['achieved']:.6g}",
                "" if row.get("error") is None else f"{row['error']:.6g}",
                skipped.get(e.id, ""),
            ]
        )
    return out.getvalue()


def _marks(problem: Problem, name: str) -> list[tuple[float, str]]:
    """Thresholds and stated means that mention variable ``name``."""
    marks = []
    for e in problem.estimates:
        props = [*getattr(e, "conditions", ()), getattr(e, "proposition", None)]
        for p in props:
            if p is not None and p.variable == name and hasattr(p, "threshold"):
                marks.append((p.threshold, f"{e.id}: {p}"))
        if getattr(e, "variable", None) == name:
            marks.append((e.expected_value, f"{e.id}: E = {e.expected_value:g}"))
    return marks


def plot_marginals(
    problem: Problem, marginals: dict[str, HistogramDistribution], path: Path
) -> None:
    """One panel per variable: the histogram density, estimates as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(marginals)
    cols = min(3, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False
    )
    binary = {v.name for v in problem.variables if v.type == "binary"}
    for ax, (name, h) in zip(axes.ravel(), marginals.items(), strict=False):
        if name in binary:
            ax.bar(["False", "True"], h.probabilities, color="tab:blue", alpha=0.7)
            ax.set_title(f"{name}: P(True) = {h.probabilities[1]:.3f}")
            ax.set_ylabel("probability")
            continue
        density = h.probabilities / h.bin_widths
        ax.bar(h.bin_centers, density, width=h.bin_widths, color="tab:blue", alpha=0.7)
        for x, label in _marks(problem, name):
            ax.axvline(x, color="tab:red", lw=1, ls="--", label=label)
        ax.set_title(f"{name} (mean {h.mean:.3g})")
        ax.set_ylabel("density")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    fig.tight_layout()
    try:
        save_figure(fig, path)
    finally:
        plt.close(fig)


def fit_problem(problem: Problem, out: Path, quiet: bool = False) -> dict[str, Any]:
    """Fit a problem and write the three outputs into ``out``; return ``info``."""
    config = problem.config.model_copy(update={"progress": not quiet})
    builder = DistributionBuilder(problem.variables, problem.estimates, config)
    _, info = builder.build()
    marginals = builder.get_all_marginals(info)
    payload = json.dumps(marginals_payload(marginals, info), indent=2) + "\n"
    atomic_write(out / "marginals.json", lambda t: t.write_text(payload))
    table = constraints_csv(problem, info)
    atomic_write(out / "constraints.csv", lambda t: t.write_text(table))
    plot_marginals(problem, marginals, out / "marginals.png")
    if not quiet:
        print(table, end="")
        print(f"wrote {out / 'marginals.json'}, constraints.csv, marginals.png")
    return info


def fit(problem_path: Path, out: Path, quiet: bool = False) -> dict[str, Any]:
    """Fit a problem file (see :func:`fit_problem`)."""
    return fit_problem(load_problem(problem_path), out, quiet)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``calibrated-response`` console script."""
    parser = argparse.ArgumentParser(prog="calibrated-response", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    fit_cmd = sub.add_parser("fit", help="fit a problem file")
    fit_cmd.add_argument("problem", type=Path, help="JSON problem file")
    fit_cmd.add_argument("--out", type=Path, required=True, help="output folder")
    fit_cmd.add_argument("--quiet", action="store_true", help="no progress output")
    args = parser.parse_args(argv)
    try:
        fit(args.problem, args.out, args.quiet)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
