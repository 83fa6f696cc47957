"""Recover a known model from samples drawn from it.

A teacher model on a 2 x 4 ladder of categorical variables (2 or 3 states; one
unary factor per variable, one pair factor per rung and rail edge) gets random
tables. Persistent Gibbs chains draw samples from it: a burn-in, then the chain
states after each of several thinned sampling steps. The empirical factor
marginals of those samples (with a small pseudocount) are the targets of a fresh,
zero-initialized graph fitted by stochastic moment matching.

The fitted model is then compared with the teacher through their exact pair
marginals. Two errors add up in that comparison: the finite-sample noise of the
targets and the fit's own error, so both are reported as well.

Run ``python example_fit_from_samples.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jax_smm import (
    Factor,
    FactorGraph,
    PersistentBuffer,
    SMMConfig,
    Variable,
    build_targets_from_samples,
    correlation_pearson,
    exact_marginals,
    fit_smm,
    max_moment_error,
    plot_history,
)

CARDS = (3, 2, 3, 2, 2, 3, 2, 3)  # top rail 0-3, bottom rail 4-7
LADDER = (
    (0, 1),
    (1, 2),
    (2, 3),
    (4, 5),
    (5, 6),
    (6, 7),
    (0, 4),
    (1, 5),
    (2, 6),
    (3, 7),
)
DEFAULT_OUT = Path(__file__).resolve().parent / "output"


def ladder_graph(rng: np.random.Generator | None) -> FactorGraph:
    """The ladder model; random tables from ``rng``, or all zeros if it is None.

    Parameters
    ----------
    rng : numpy.random.Generator or None
        Source of the teacher's tables (unary std 0.5, pair std 1.0).

    Returns
    -------
    FactorGraph
        Factors ``0 .. 7`` are unary, ``8 ..`` are the pairs of ``LADDER``.
    """
    scopes = [(i,) for i in range(len(CARDS))] + list(LADDER)
    factors = []
    for fid, scope in enumerate(scopes):
        shape = tuple(CARDS[v] for v in scope)
        scale = 0.5 if len(scope) == 1 else 1.0
        theta = np.zeros(shape) if rng is None else scale * rng.standard_normal(shape)
        factors.append(Factor(fid, scope, theta))
    variables = [Variable.categorical(f"x{i}", k) for i, k in enumerate(CARDS)]
    return FactorGraph(variables, factors)


def draw_samples(
    graph: FactorGraph, chains: int, rounds: int, thin: int, burn_in: int, seed: int
) -> dict[str, np.ndarray]:
    """Sample ``graph`` with persistent chains.

    Parameters
    ----------
    graph : FactorGraph
        The model to sample.
    chains : int
        Number of parallel chains.
    rounds : int
        Number of collected chain snapshots; ``chains * rounds`` samples in all.
    thin : int
        Gibbs sweeps between snapshots.
    burn_in : int
        Sweeps discarded before the first snapshot.
    seed : int
        Seed of the chains.

    Returns
    -------
    dict
        ``{"cat": int32[N, n_cat], "cont": float32[N, 0]}`` with
        ``N = chains * rounds``.
    """
    buffer = PersistentBuffer.initialize(graph, chains, seed)
    buffer, _, _ = buffer.sample_step(graph, n_sweeps=burn_in)
    snapshots = []
    for _ in range(rounds):
        buffer, _, _ = buffer.sample_step(graph, n_sweeps=thin)
        snapshots.append(buffer.get_states())
    return jax.tree.map(lambda *xs: np.concatenate(xs), *snapshots)


def pair_gap(graph: FactorGraph, a: dict, b: dict) -> float:
    """Largest absolute difference between two sets of pair-factor tables."""
    return max(
        float(np.max(np.abs(np.asarray(a[f.id]) - np.asarray(b[f.id]))))
        for f in graph.factors
        if f.order == 2
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the example.

    Parameters
    ----------
    argv : sequence of str, optional
        Command-line arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    dict
        ``final_exact_max_error`` (exact marginals of the fitted model vs the
        sample targets, all factors), ``pair_error_vs_teacher`` (fitted vs
        teacher exact pair marginals), ``sample_noise_pairs`` (sample targets vs
        teacher exact pair marginals), ``correlation_pearson`` (fitted vs teacher
        connected pair correlations), ``num_samples``, ``iterations``,
        ``wall_time_s`` (the fit) and ``plot_path``.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    parser.add_argument("--iterations", type=int, default=300, help="SMM iterations")
    parser.add_argument("--samples", type=int, default=16384, help="samples to draw")
    parser.add_argument("--seed", type=int, default=2, help="seed of the teacher")
    parser.add_argument("--quiet", action="store_true", help="print nothing")
    args = parser.parse_args(argv)

    teacher = ladder_graph(np.random.default_rng(args.seed))
    chains = 1024
    samples = draw_samples(
        teacher,
        chains,
        rounds=max(1, args.samples // chains),
        thin=10,
        burn_in=200,
        seed=args.seed,
    )
    student = ladder_graph(None)
    targets = build_targets_from_samples(student, samples, pseudocount=1e-3)
    config = SMMConfig(
        num_iterations=args.iterations,
        num_chains=1024,
        mcmc_steps_per_iteration=3,
        learning_rate=0.05,
        seed=args.seed,
        progress=not args.quiet,
    )
    t0 = time.perf_counter()
    fitted, history = fit_smm(student, targets, config)
    wall = time.perf_counter() - t0

    truth, model = exact_marginals(teacher), exact_marginals(fitted)
    result = {
        "final_exact_max_error": max_moment_error(fitted, targets, model),
        "pair_error_vs_teacher": pair_gap(fitted, model, truth),
        "sample_noise_pairs": pair_gap(fitted, targets.moments, truth),
        "correlation_pearson": correlation_pearson(fitted, model, truth),
        "num_samples": int(samples["cat"].shape[0]),
        "iterations": len(history.iteration),
        "wall_time_s": wall,
        "plot_path": str(
            plot_history(
                history,
                args.out / "fit_from_samples_error.png",
                "example_fit_from_samples",
            )
        ),
    }
    if args.quiet:
        return result

    n = result["iterations"]
    print(f"teacher: {teacher!r}; {result['num_samples']} samples drawn from it")
    print("iteration  max |err|  mean |err|   (chain estimate vs sample targets)")
    for i in np.unique(np.linspace(0, n - 1, 11).round().astype(int)):
        err_max, err_mean = history.max_error[i], history.mean_error[i]
        print(f"{i:>9d}  {err_max:>9.4f}  {err_mean:>10.5f}")
    print(f"fit: {wall:.1f} s")
    print(
        "exact max |error| of the fitted model vs sample targets: "
        f"{result['final_exact_max_error']:.4f}\n"
        "pair marginals, fitted vs teacher:                       "
        f"{result['pair_error_vs_teacher']:.4f}\n"
        "pair marginals, sample targets vs teacher (noise floor): "
        f"{result['sample_noise_pairs']:.4f}\n"
        "Pearson r of connected correlations, fitted vs teacher:  "
        f"{result['correlation_pearson']:.4f}"
    )
    print(f"error curve: {result['plot_path']}")
    return result


if __name__ == "__main__":
    main()
