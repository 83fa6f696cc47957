"""Fit a sparse pairwise model with mixed cardinalities to synthetic marginals.

A "teacher" graph over nine categorical variables (2 to 4 states each; a ring
plus two chords, one unary factor per variable and one pair factor per edge) gets
random tables. Its exact factor marginals, found by enumerating all 13824 joint
states, are the targets. A copy of the graph with every table set to zero is then
fitted to them by stochastic moment matching, and the fitted model's exact
marginals are compared with the targets.

Run ``python example_pairwise.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np

from jax_smm import (
    Factor,
    FactorGraph,
    FitHistory,
    SMMConfig,
    Variable,
    build_targets_from_marginals,
    exact_marginals,
    fit_smm,
    max_moment_error,
    mean_moment_error,
    plot_history,
)

CARDS = (2, 3, 4, 2, 3, 4, 3, 2, 4)
EDGES = (
    *((i, (i + 1) % len(CARDS)) for i in range(len(CARDS))),  # the ring
    (0, 4),
    (2, 6),
)
DEFAULT_OUT = Path(__file__).resolve().parent / "output"


def teacher_graph(
    seed: int, unary_scale: float = 0.5, pair_scale: float = 1.0
) -> FactorGraph:
    """Random-theta pairwise graph on the ``CARDS`` variables and ``EDGES``.

    Parameters
    ----------
    seed : int
        Seed of the random tables.
    unary_scale, pair_scale : float
        Standard deviations of the unary and pair table entries.

    Returns
    -------
    FactorGraph
        Factors ``0 .. n-1`` are the unary ones, the pair factors follow.
    """
    rng = np.random.default_rng(seed)
    variables = [Variable.categorical(f"x{i}", k) for i, k in enumerate(CARDS)]
    factors = [
        Factor(i, (i,), unary_scale * rng.standard_normal(k))
        for i, k in enumerate(CARDS)
    ]
    factors += [
        Factor(
            len(CARDS) + e,
            (i, j),
            pair_scale * rng.standard_normal((CARDS[i], CARDS[j])),
        )
        for e, (i, j) in enumerate(EDGES)
    ]
    return FactorGraph(variables, factors)


def print_history(history: FitHistory, rows: int = 10) -> None:
    """Print the chain-estimated moment errors at about ``rows`` iterations."""
    n = len(history.iteration)
    print(f"{'iteration':>9}  {'max |err|':>9}  {'mean |err|':>10}  {'time [s]':>8}")
    for i in sorted({round(x) for x in np.linspace(0, n - 1, rows + 1)}):
        print(
            f"{history.iteration[i]:>9d}  {history.max_error[i]:>9.4f}  "
            f"{history.mean_error[i]:>10.5f}  {history.runtime[i]:>8.2f}"
        )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    parser.add_argument("--iterations", type=int, default=300, help="SMM iterations")
    parser.add_argument("--seed", type=int, default=0, help="seed of the teacher")
    parser.add_argument("--quiet", action="store_true", help="print nothing")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the example.

    Parameters
    ----------
    argv : sequence of str, optional
        Command-line arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    dict
        ``final_exact_max_error`` and ``final_exact_mean_error`` (exact model
        marginals of the fitted graph vs the targets), ``final_estimated_max_error``
        (last chain estimate), ``iterations``, ``wall_time_s`` and ``plot_path``.
    """
    args = parse_args(argv)
    teacher = teacher_graph(args.seed)
    targets = build_targets_from_marginals(teacher, exact_marginals(teacher))
    start = teacher.with_theta([jnp.zeros_like(t) for t in teacher.theta_groups])
    config = SMMConfig(
        num_iterations=args.iterations,
        num_chains=1024,
        mcmc_steps_per_iteration=3,
        learning_rate=0.05,
        optimizer="adam",
        seed=args.seed,
        progress=not args.quiet,
    )
    if not args.quiet:
        print(f"teacher: {teacher!r}, {int(np.prod(CARDS))} joint states")
    t0 = time.perf_counter()
    fitted, history = fit_smm(start, targets, config)
    wall = time.perf_counter() - t0
    exact = exact_marginals(fitted)
    result = {
        "final_exact_max_error": max_moment_error(fitted, targets, exact),
        "final_exact_mean_error": mean_moment_error(fitted, targets, exact),
        "final_estimated_max_error": float(history.max_error[-1]),
        "iterations": len(history.iteration),
        "wall_time_s": wall,
        "plot_path": str(
            plot_history(history, args.out / "pairwise_error.png", "example_pairwise")
        ),
    }
    if not args.quiet:
        print("moment error of the chain estimate at each iteration:")
        print_history(history)
        print(
            f"fit: {wall:.1f} s; exact error of the fitted model: "
            f"max {result['final_exact_max_error']:.4f}, "
            f"mean {result['final_exact_mean_error']:.5f}"
        )
        print(f"error curve: {result['plot_path']}")
    return result


if __name__ == "__main__":
    main()
