"""The package's demo (console script ``jax-smm-demo``, part of ``make demo``).

A small pairwise model with mixed cardinalities is given random tables; its exact
factor marginals become the targets of a zero-initialized copy, which is fitted by
stochastic moment matching. The demo prints a one-screen summary and writes the
error curve as a PNG.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jax_smm.checks import MAX_SEED
from jax_smm.couplings import top_couplings
from jax_smm.diagnostics import (
    exact_marginals,
    joint_size,
    max_moment_error,
    mean_moment_error,
)
from jax_smm.graph import Factor, FactorGraph, Variable
from jax_smm.model import MaxEntModel
from jax_smm.plots import plot_history
from jax_smm.targets import build_targets_from_marginals
from jax_smm.training import SMMConfig, fit_smm

DEMO_CARDS = (2, 3, 4, 3, 2, 4, 3, 2)
DEMO_EDGES = ((0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 6), (6, 7), (7, 0), (1, 5))


def demo_graph(seed: int = 0) -> FactorGraph:
    """A ring of ``DEMO_CARDS`` variables plus one chord, with random tables.

    Parameters
    ----------
    seed : int
        Seed of the tables (unary entries have std 0.5, pair entries std 1).

    Returns
    -------
    FactorGraph
        One unary factor per variable (ids ``0 .. n-1``) and one pair factor per
        edge of ``DEMO_EDGES``.
    """
    rng = np.random.default_rng(seed)
    n = len(DEMO_CARDS)
    variables = [Variable.categorical(f"x{i}", k) for i, k in enumerate(DEMO_CARDS)]
    factors = [
        Factor(i, (i,), 0.5 * rng.standard_normal(k)) for i, k in enumerate(DEMO_CARDS)
    ]
    for e, (i, j) in enumerate(DEMO_EDGES):
        table = rng.standard_normal((DEMO_CARDS[i], DEMO_CARDS[j]))
        factors.append(Factor(n + e, (i, j), table))
    return FactorGraph(variables, factors)


def _int_in(minimum: int, maximum: int | None) -> Callable[[str], int]:
    """An argparse type: an integer in ``[minimum, maximum]``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            high = "" if maximum is None else f" and <= {maximum}"
            raise argparse.ArgumentTypeError(f"must be >= {minimum}{high}, got {value}")
        return value

    return parse


def main(argv: Sequence[str] | None = None) -> None:
    """Fit the demo model and print a summary.

    Parameters
    ----------
    argv : sequence of str, optional
        Command-line arguments (default: ``sys.argv[1:]``): ``--out DIR``
        (default ``./jax_smm_demo_output``), ``--iterations N``, ``--seed S``.
    """
    parser = argparse.ArgumentParser(
        prog="jax-smm-demo", description="Fit a small factor graph by SMM."
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("jax_smm_demo_output"),
        help="folder for the PNG (default: ./jax_smm_demo_output)",
    )
    parser.add_argument(
        "--iterations", type=_int_in(1, None), default=250, help="SMM steps (>= 1)"
    )
    parser.add_argument(
        "--seed",
        type=_int_in(0, MAX_SEED),
        default=0,
        help=f"seed of the teacher and of the fit (0 .. {MAX_SEED})",
    )
    args = parser.parse_args(argv)
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out: {str(args.out)!r} is a file, not a folder")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        parser.error(f"--out: cannot create {str(args.out)!r} ({err})")

    t_start = time.perf_counter()
    teacher = demo_graph(args.seed)
    targets = build_targets_from_marginals(teacher, exact_marginals(teacher))
    zero = teacher.with_theta([jnp.zeros_like(t) for t in teacher.theta_groups])
    config = SMMConfig(
        num_iterations=args.iterations,
        num_chains=512,
        mcmc_steps_per_iteration=3,
        learning_rate=0.05,
        seed=args.seed,
        progress=False,
    )
    t_fit = time.perf_counter()
    fitted, history = fit_smm(zero, targets, config)
    fit_seconds = time.perf_counter() - t_fit
    exact = exact_marginals(fitted)
    max_err = max_moment_error(fitted, targets, exact)
    mean_err = mean_moment_error(fitted, targets, exact)
    png = plot_history(history, args.out / "demo_error.png", "jax-smm demo")
    model = MaxEntModel.from_fit(fitted, history)
    saved = model.save(args.out / "demo_model.npz")
    (i, j, _), (ti, tj, _) = model.top_couplings(1)[0], top_couplings(teacher, 1)[0]
    total_seconds = time.perf_counter() - t_start

    orders = [f.order for f in teacher.factors]
    rule = "-" * 72
    lines = [
        rule,
        "jax-smm demo: stochastic moment matching on a small pairwise model",
        rule,
        f"device        {jax.default_backend()} ({jax.devices()[0].device_kind})",
        f"graph         {teacher.num_vars} categorical variables "
        f"(K = {min(DEMO_CARDS)}..{max(DEMO_CARDS)}, {joint_size(teacher)} joint "
        f"states), {orders.count(1)} unary + {orders.count(2)} pair factors",
        f"targets       exact marginals of a random-theta teacher "
        f"({len(targets.moments)} tables)",
        f"fit           {len(history.iteration)} iterations x "
        f"{config.mcmc_steps_per_iteration} sweeps x {config.num_chains} chains, "
        f"{config.optimizer} lr {config.learning_rate} ({config.schedule})",
        f"wall time     {fit_seconds:.1f} s fit (incl. compilation), "
        f"{total_seconds:.1f} s total",
        f"chain error   max |err| {history.max_error[0]:.3f} at start -> "
        f"{history.max_error[-1]:.4f} at the end (MCMC estimate)",
        f"exact error   max |err| {max_err:.4f}, mean |err| {mean_err:.5f} "
        "(enumerated fitted model)",
        f"plot          {png.resolve()}",
        f"model         {saved.name} in the plot's folder (MaxEntModel.load); "
        f"top pair x{i}-x{j} (teacher: x{ti}-x{tj})",
        rule,
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
