"""Fit time and accuracy on a synthetic problem of 1,000 variables.

500 binary and 500 continuous variables (on [0, 1], 10 bins) are drawn from a
random sparse directed model (each variable has up to two earlier parents).
3,000 estimates are read off that data: marginal probabilities, expectations,
and one- and two-condition conditional probabilities and expectations whose
conditions sit on a variable's parents (conditions of at least 5 % mass).
Stated values are computed on the
*binned* data (thresholds on bin edges, expectations from bin means), so the data
itself satisfies every estimate exactly and the problem is feasible. Reported:
fit seconds (compile included) and the max constraint error (probabilities, and
expectations on the unit range). Goal: < 60 s and max error < 0.02.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import readme_block
from harness import write_results

from calibrated_response.io import check_output_dir
from calibrated_response.maxent_smm import DistributionBuilder, SMMConfig
from calibrated_response.models import (
    BinaryVariable,
    ConditionalExpectationEstimate,
    ConditionalProbabilityEstimate,
    ContinuousVariable,
    EqualityProposition,
    ExpectationEstimate,
    InequalityProposition,
    ProbabilityEstimate,
)
from jax_smm.persistence import atomic_write
from jax_smm.plots import pyplot, save_figure

BINS = 10
MIN_CONDITION_MASS = 0.05
RESULTS = Path(__file__).resolve().parent / "results"


def simulate(
    n_vars: int, n_samples: int, seed: int
) -> tuple[np.ndarray, list[list[int]]]:
    """Binned data of a random sparse directed model: ``int[samples, vars]`` bins."""
    rng = np.random.default_rng(seed)
    data = np.zeros((n_samples, n_vars))
    parents: list[list[int]] = []
    for i in range(n_vars):
        k = min(i, int(rng.integers(0, 3)))
        ps = sorted(rng.choice(i, k, replace=False).tolist()) if k else []
        parents.append(ps)
        drive = rng.normal(0, 0.5) + sum(
            rng.normal(0, 1.5) * (data[:, p] - 0.5) for p in ps
        )
        prob = 1 / (1 + np.exp(-drive))
        if i % 2:  # binary
            data[:, i] = rng.random(n_samples) < prob
        else:
            data[:, i] = np.clip(rng.beta(2 * prob + 0.5, 2 * (1 - prob) + 0.5), 0, 1)
    bins = np.where(
        np.arange(n_vars) % 2 == 1,
        data.astype(int),
        np.minimum((data * BINS).astype(int), BINS - 1),
    )
    return bins, parents


def make_problem(
    bins: np.ndarray, parents: list[list[int]], n_estimates: int, seed: int
):
    """Variables and estimates whose values hold exactly on the binned data."""
    rng = np.random.default_rng(seed)
    n_vars = bins.shape[1]
    centers = (np.arange(BINS) + 0.5) / BINS
    variables = [
        BinaryVariable(name=f"b{i}")
        if i % 2
        else ContinuousVariable(name=f"c{i}", lower_bound=0.0, upper_bound=1.0)
        for i in range(n_vars)
    ]

    def event(i: int):
        """A random event on variable i and its indicator on the data."""
        if i % 2:
            value = bool(rng.integers(2))
            return EqualityProposition(variable=f"b{i}", value=value), bins[
                :, i
            ] == value
        edge = int(rng.integers(1, BINS))
        above = bool(rng.integers(2))
        prop = InequalityProposition(
            variable=f"c{i}", threshold=edge / BINS, is_lower_bound=above
        )
        return prop, (bins[:, i] >= edge) if above else (bins[:, i] < edge)

    def value(i: int) -> np.ndarray:
        return bins[:, i].astype(float) if i % 2 else centers[bins[:, i]]

    estimates = []
    with_parents = [i for i in range(n_vars) if parents[i]]
    while len(estimates) < n_estimates:
        kind = len(estimates) % 4
        eid = f"e{len(estimates)}"
        i = int(rng.choice(with_parents))
        if kind == 0:
            prop, ind = event(i)
            estimates.append(
                ProbabilityEstimate(id=eid, proposition=prop, probability=ind.mean())
            )
        elif kind == 1:
            estimates.append(
                ExpectationEstimate(
                    id=eid, variable=variables[i].name, expected_value=value(i).mean()
                )
            )
        else:
            conds, mask = [], np.ones(len(bins), bool)
            for p in parents[i][: 1 if kind == 2 else 2]:
                c, ind = event(p)
                conds.append(c)
                mask &= ind
            if mask.mean() < MIN_CONDITION_MASS:
                continue  # too rare for anyone to state (or to check by sampling)
            if rng.integers(2):
                prop, ind = event(i)
                estimates.append(
                    ConditionalProbabilityEstimate(
                        id=eid,
                        proposition=prop,
                        conditions=conds,
                        probability=ind[mask].mean(),
                    )
                )
            else:
                estimates.append(
                    ConditionalExpectationEstimate(
                        id=eid,
                        variable=variables[i].name,
                        conditions=conds,
                        expected_value=value(i)[mask].mean(),
                    )
                )
    return variables, estimates


QUICK = {
    "variables": 40,
    "estimates": 60,
    "samples": 2000,
    "iterations": 50,
    "readout_sweeps": 20,
    "repeats": 1,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; write ``large_problem.json`` and its figure."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variables", type=int, default=1000)
    parser.add_argument("--estimates", type=int, default=3000)
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--iterations", type=int, default=450)
    parser.add_argument("--chains", type=int, default=256)
    parser.add_argument("--sweeps", type=int, default=2)
    parser.add_argument("--learning-rate", type=float, default=0.1)
    parser.add_argument("--average-fraction", type=float, default=0.3)
    parser.add_argument("--readout-sweeps", type=int, default=800)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="timed fits")
    parser.add_argument(
        "--quick", action="store_true", help="a small problem, one fit (smoke run)"
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=RESULTS,
        help="folder of the JSON and figure; the README table is rewritten only "
        "for a full run into the default folder",
    )
    args = parser.parse_args(argv)
    if args.quick:
        parser.set_defaults(**QUICK)
        args = parser.parse_args(argv)
    check_output_dir(args.out_dir, "--out-dir")
    bins, parents = simulate(args.variables, args.samples, args.seed)
    variables, estimates = make_problem(bins, parents, args.estimates, args.seed + 1)
    config = SMMConfig(
        max_bins=BINS,
        num_iterations=args.iterations,
        num_chains=args.chains,
        mcmc_steps_per_iteration=args.sweeps,
        learning_rate=args.learning_rate,
        average_fraction=args.average_fraction,
        readout_sweeps=args.readout_sweeps,
        seed=args.seed,
    )
    runs = []
    for _ in range(args.repeats):  # same seed: the same fit, timed again
        t0 = time.perf_counter()
        builder = DistributionBuilder(variables, estimates, config)
        _, info = builder.build()
        runs.append(time.perf_counter() - t0)
    seconds = float(np.median(runs))
    errors = [s["error"] for s in info["constraint_satisfaction"].values()]
    result = {
        "variables": args.variables,
        "estimates": len(estimates),
        "skipped": len(info["skipped_constraints"]),
        "factors": info["n_factors"],
        "settings": {
            k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()
        },
        "fit_seconds": seconds,
        "fit_seconds_runs": runs,
        "max_error": float(np.max(errors)),
        "mean_error": float(np.mean(errors)),
        "p95_error": float(np.quantile(errors, 0.95)),
        "goal": {"fit_seconds": 60, "max_error": 0.02},
    }
    print(json.dumps(result, indent=1))
    write_results(args.out_dir / "large_problem.json", result)
    plot_errors(
        np.asarray(errors), seconds, args.variables, args.out_dir / "large_problem.png"
    )
    if not args.quick and args.out_dir.resolve() == RESULTS:
        saved = json.loads((RESULTS / "large_problem.json").read_text())
        readme = readme_block.README.read_text(encoding="utf-8")
        updated = readme_block.replace_block(readme, readme_block.render(saved))
        atomic_write(
            readme_block.README, lambda t: t.write_text(updated, encoding="utf-8")
        )
    return 0


def plot_errors(errors: np.ndarray, seconds: float, n_vars: int, path: Path) -> None:
    """Histogram of the per-estimate errors, with the goal marked."""
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(errors, bins=np.logspace(-5, 0, 51), color="tab:blue", alpha=0.8)
    ax.axvline(0.02, color="tab:red", ls="--", label="goal: max error 0.02")
    ax.set_xscale("log")
    ax.set_xlabel("|achieved - stated| per estimate")
    ax.set_ylabel("estimates")
    ax.set_title(
        f"{errors.size} estimates, {n_vars:,} variables: fit {seconds:.0f} s, "
        f"max {errors.max():.3f}"
    )
    ax.legend()
    try:
        save_figure(fig, path)
    finally:
        plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
