"""Command line: fit a problem, then query and sample the saved distribution.

``calibrated-response fit problem.json --out DIR`` reads a JSON problem
(variables, estimates and optional config), fits the maximum-entropy
distribution and writes into ``DIR``: ``marginals.json``, ``constraints.csv``
(stated vs achieved value of every estimate, its tolerance, and the skipped
ones with their reason), ``marginals.png`` (one panel per variable, the
estimates marked) and the distribution itself (``model.npz`` +
``distribution.json``). The whole set is written to a temporary folder and
moved in only when complete. ``--iterations``, ``--chains``, ``--seed`` and
``--target`` override the problem's settings.

``calibrated-response query DIR 'P(temp > 20 | rain)'`` and
``calibrated-response query DIR 'E(umbrella_sales | rain, wind)'`` answer from
a saved distribution (grammar: :mod:`calibrated_response.models.query_parser`);
``calibrated-response sample DIR -n 1000 --out samples.csv`` writes draws.

Exit status: 0 success; 2 bad input (a message on stderr names it); 3 the
fit did not meet every estimate within its tolerance (the unmet ones are
listed; ``--allow-unconverged`` makes this a warning and exits 0).
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

from calibrated_response.io import check_output_dir, write_output_set
from calibrated_response.maxent_smm import (
    DistributionBuilder,
    FittedDistribution,
    SMMConfig,
)
from calibrated_response.models import (
    EstimateUnion,
    HistogramDistribution,
    VariableUnion,
)
from jax_smm.persistence import atomic_write
from jax_smm.plots import pyplot, save_figure

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


class Problem(BaseModel):
    """The JSON input: ``{"variables": [...], "estimates": [...], "config": {...}}``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    variables: list[VariableUnion]
    estimates: list[EstimateUnion]
    config: SMMConfig = SMMConfig()


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json`` object hook refusing a key that appears twice in one object."""
    keys = [k for k, _ in pairs]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise ValueError(f"duplicate JSON key(s) {dup} in one object")
    return dict(pairs)


def load_problem(path: Path) -> Problem:
    """Parse and validate a problem file; errors name the offending JSON path."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ValueError(f"{path}: cannot read: {err.strerror}") from None
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text ({err.reason})") from None
    try:
        json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: invalid JSON: {err}") from None
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    try:
        return Problem.model_validate_json(text)
    except ValidationError as err:
        lines = [
            f"  at {'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}"
            for e in err.errors()
        ]
        raise ValueError(f"{path}: invalid problem\n" + "\n".join(lines)) from None


def _summary(h: HistogramDistribution, binary: bool) -> dict[str, Any]:
    """A variable's entry in ``marginals.json`` (binary: P(True))."""
    if binary:
        p = float(h.probabilities[1])
        return {"type": "binary", "p_true": p, "std": (p * (1.0 - p)) ** 0.5}
    return {
        "type": "continuous",
        "bin_edges": list(h.bin_edges),
        "bin_probabilities": list(h.bin_probabilities),
        "mean": h.mean,
        "std": h.variance**0.5,
        "quantiles": {str(q): float(h.quantile(q)) for q in QUANTILES},
    }


def marginals_payload(
    problem: Problem, fitted: FittedDistribution, target: str
) -> dict[str, Any]:
    """The content of ``marginals.json``."""
    binary = {v.name for v in problem.variables if v.type == "binary"}
    return {
        "target_variable": target,
        "converged": fitted.converged,
        "variables": {
            name: _summary(h, name in binary) for name, h in fitted.marginals().items()
        },
        "constraint_satisfaction": fitted.info["constraint_satisfaction"],
        "skipped_constraints": fitted.info["skipped_constraints"],
        "fit_seconds": fitted.info["fit_seconds"],
    }


def constraints_csv(fitted: FittedDistribution) -> str:
    """One row per estimate: stated vs achieved and met, or why it was skipped."""
    out = io.StringIO()
    writer = csv.writer(out)
    columns = ["id", "estimate_type", "target", "achieved", "error", "tolerance"]
    writer.writerow([*columns, "met", "skipped"])
    for row in fitted.constraint_report():
        writer.writerow(
            [
                row["id"],
                row["estimate_type"],
                row["target"],
                "" if row["achieved"] is None else f"{row['achieved']:.6g}",
                "" if row["error"] is None else f"{row['error']:.6g}",
                f"{row['tolerance']:.6g}",
                "" if row["met"] is None else ("yes" if row["met"] else "NO"),
                row["skipped"] or "",
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
    plt = pyplot()

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


class Unconverged(Exception):
    """The fit left estimates unmet (exit status 3)."""


def _figure_writer(problem: Problem, fitted: FittedDistribution):
    """A writer of ``marginals.png``."""

    def write(path: Path) -> None:
        plot_marginals(problem, fitted.marginals(), path)

    return write


def fit_problem(
    problem: Problem,
    out: Path,
    quiet: bool = False,
    target: str | None = None,
    allow_unconverged: bool = False,
) -> FittedDistribution:
    """Fit a problem and write its output set into ``out``.

    Raises
    ------
    ValueError
        For a bad problem, target or output folder (checked before fitting).
    Unconverged
        When estimates are unmet and ``allow_unconverged`` is false (the
        outputs are written first, so they can be inspected).
    """
    check_output_dir(out, "--out")
    names = [v.name for v in problem.variables]
    target = names[0] if target is None else target
    if target not in names:
        raise ValueError(f"--target {target!r} is not a variable; known: {names}")
    config = problem.config.model_copy(update={"progress": not quiet})
    builder = DistributionBuilder(problem.variables, problem.estimates, config)
    fitted = builder.fit()
    payload = json.dumps(marginals_payload(problem, fitted, target), indent=2) + "\n"
    table = constraints_csv(fitted)
    writers = {
        "marginals.json": lambda t: t.write_text(payload),
        "constraints.csv": lambda t: t.write_text(table),
        "marginals.png": _figure_writer(problem, fitted),
        **fitted.writers(),
    }
    write_output_set(out, writers)
    if not quiet:
        print(table, end="")
        print(f"wrote {out}: {', '.join(writers)}")
    unmet = fitted.unmet()
    if unmet:
        lines = [
            f"  {r['id']}: stated {r['target']:g}, fitted "
            + (
                "(condition never holds)"
                if r["achieved"] is None
                else f"{r['achieved']:.4g}"
            )
            + f" (tolerance {r['tolerance']:.3g})"
            for r in unmet
        ]
        message = "the fit misses these estimates:\n" + "\n".join(lines)
        if not allow_unconverged:
            raise Unconverged(message)
        print(f"warning: {message}", file=sys.stderr)
    return fitted


def _overrides(problem: Problem, args: argparse.Namespace) -> Problem:
    """The problem with the command line's config overrides applied."""
    update = {
        field: value
        for field, value in (
            ("num_iterations", args.iterations),
            ("num_chains", args.chains),
            ("seed", args.seed),
        )
        if value is not None
    }
    if not update:
        return problem
    try:
        config = SMMConfig.model_validate({**problem.config.model_dump(), **update})
    except ValidationError as err:
        raise ValueError(
            "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in err.errors())
        ) from None
    return problem.model_copy(update={"config": config})


def query(directory: Path, text: str, n: int, seed: int) -> str:
    """The answer to one query of a saved distribution, as a line of text."""
    fitted = FittedDistribution.load(directory)
    answer = fitted.query(text, n=n, seed=seed)
    if answer.method == "exact":
        return f"{text} = {answer.value:.6g} (exact)"
    return (
        f"{text} = {answer.value:.6g} +- {answer.stderr:.2g} "
        f"(monte carlo, {answer.samples} draws)"
    )


def sample_csv(directory: Path, n: int, seed: int, out: Path) -> Path:
    """Write ``n`` draws of a saved distribution to a CSV file."""
    if out.is_dir():
        raise ValueError(f"--out {str(out)!r} is a folder; give a file name")
    check_output_dir(out.parent, "--out")
    draws = FittedDistribution.load(directory).sample(n, seed)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(list(draws))
    columns = list(draws.values())
    for i in range(n):
        writer.writerow(
            [
                ("true" if c[i] else "false") if c.dtype == bool else f"{c[i]:.8g}"
                for c in columns
            ]
        )
    return atomic_write(out, lambda t: t.write_text(buffer.getvalue()))


def _positive(text: str) -> int:
    """An argparse type: an int of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _seed(text: str) -> int:
    """An argparse type: a seed in [0, 2**32)."""
    value = int(text)
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"must be in [0, 2**32), got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``calibrated-response`` console script."""
    parser = argparse.ArgumentParser(
        prog="calibrated-response",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    fit_cmd = sub.add_parser("fit", help="fit a problem file")
    fit_cmd.add_argument("problem", type=Path, help="JSON problem file")
    fit_cmd.add_argument("--out", type=Path, required=True, help="output folder")
    fit_cmd.add_argument("--quiet", action="store_true", help="no progress output")
    fit_cmd.add_argument("--iterations", type=_positive, help="override num_iterations")
    fit_cmd.add_argument("--chains", type=_positive, help="override num_chains")
    fit_cmd.add_argument("--seed", type=_seed, help="override seed")
    fit_cmd.add_argument("--target", help="target variable (default: the first)")
    fit_cmd.add_argument(
        "--allow-unconverged",
        action="store_true",
        help="exit 0 with a warning when estimates are unmet",
    )
    query_cmd = sub.add_parser("query", help="answer P(...) or E(...) queries")
    query_cmd.add_argument("model", type=Path, help="folder written by fit")
    query_cmd.add_argument("queries", nargs="+", help="e.g. 'P(temp > 20 | rain)'")
    query_cmd.add_argument(
        "-n", type=_positive, default=20_000, help="Monte Carlo draws"
    )
    query_cmd.add_argument("--seed", type=_seed, default=0)
    sample_cmd = sub.add_parser("sample", help="write draws to a CSV file")
    sample_cmd.add_argument("model", type=Path, help="folder written by fit")
    sample_cmd.add_argument("-n", type=_positive, required=True, help="draws")
    sample_cmd.add_argument("--out", type=Path, required=True, help="CSV file")
    sample_cmd.add_argument("--seed", type=_seed, default=0)
    args = parser.parse_args(argv)
    try:
        if args.command == "fit":
            problem = _overrides(load_problem(args.problem), args)
            fit_problem(
                problem, args.out, args.quiet, args.target, args.allow_unconverged
            )
        elif args.command == "query":
            for text in args.queries:
                print(query(args.model, text, args.n, args.seed))
        else:
            path = sample_csv(args.model, args.n, args.seed, args.out)
            print(f"wrote {args.n} draws to {path}")
    except Unconverged as err:
        print(f"error: {err}", file=sys.stderr)
        return 3
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
