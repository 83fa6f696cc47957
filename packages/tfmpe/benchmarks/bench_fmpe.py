"""The flow-matching estimator against the exact posterior and a flat peer.

The package README ("Benchmarks", "The estimator against the exact posterior
and a flat-vector peer") describes the three parts (accuracy against the
simulation budget, generalization to more groups, speed), the peers and the
goals. Writes ``fmpe.json``, ``fmpe.png`` (C2ST against budget and K) and
``fmpe_posterior.png`` (pair plot) into ``--out-dir`` (default: ``results/``
next to this script); ``--quick`` runs everything at toy sizes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import fmpe_lib as lib
import fmpe_report as report
import numpy as np
from harness import log, write_results

from tfmpe import combine_tokens
from tfmpe.models.hierarchical_gaussian import HierarchicalGaussian
from tfmpe.plotting import pair_plot

CONFIG = {"embed_dim": 48, "n_heads": 4, "n_layers": 2}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--out-dir", type=Path, default=Path(__file__).parent / "results"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    quick = args.quick
    budgets = [300, 600] if quick else [1_000, 10_000, 100_000]
    steps = 40 if quick else 6000
    n_obs, n_samples = (2, 200) if quick else (3, 1000)
    config = {"embed_dim": 16, "n_heads": 2, "n_layers": 1} if quick else CONFIG
    peer_epochs = 3 if quick else 200
    model = HierarchicalGaussian(n_groups=5)
    observed = lib.truths(model, n_obs, 10_000)
    results: dict = {"budgets": [], "generalization": [], "speed": {}}

    reference = None
    for i, budget in enumerate(budgets):
        train = lib.simulate(model, int(0.9 * budget), args.seed + 10 * i)
        val = lib.simulate(model, budget - int(0.9 * budget), args.seed + 10 * i + 1)
        est, info = lib.train_ours(
            train, val, ["mu", "theta"], None, steps, config, args.seed
        )
        ours = report.summary(
            lib.scores(
                lambda t, n, s, e=est: lib.sample_ours(e, t, n, s),
                model,
                observed,
                n_samples,
            )
        )
        report.log_run(f"ours, {budget} simulations", info, ours)
        peer = lib.train_peer(combine_tokens(train, val), peer_epochs, args.seed)
        theirs = report.summary(
            lib.scores(lib.peer_sampler(peer), model, observed, n_samples)
        )
        peer_info = {"train_seconds": peer.train_seconds, "steps": peer.steps}
        report.log_run(f"flowjax, {budget} simulations", peer_info, theirs)
        results["budgets"].append(
            {
                "budget": budget,
                "ours": ours,
                "ours_fit": info,
                "flowjax": theirs,
                "flowjax_fit": peer_info,
            }
        )
        if i == len(budgets) // 2:
            reference = (est, info, peer, train)

    est, info, peer, train = reference
    fact_budget = budgets[len(budgets) // 2]
    posterior, fact_info = lib.train_factorized(fact_budget, steps, config, args.seed)
    for k in (5, 10, 20):
        model_k = HierarchicalGaussian(n_groups=k)
        observed_k = lib.truths(model_k, n_obs, 20_000 + k)
        joint = report.summary(
            lib.scores(
                lambda t, n, s: lib.sample_ours(est, t, n, s),
                model_k,
                observed_k,
                n_samples,
            )
        )
        ess: list[float] = []
        fact = report.summary(
            lib.scores(
                lib.factorized_sampler(posterior, ess), model_k, observed_k, n_samples
            )
        )
        log(f"K = {k}: joint {joint['mean']:.3f}, factorized {fact['mean']:.3f}")
        results["generalization"].append(
            {
                "groups": k,
                "joint_trained_at_5": joint,
                "factorized": fact,
                "factorized_min_ess": float(min(ess)),
                "flowjax": "cannot run: its input size is fixed at K = 5",
            }
        )
    results["factorized_fit"] = fact_info

    batch = lib.first(train, 128)
    results["speed"] = {
        "step": lib.step_overhead(est, batch),
        "ours_fit_steps_per_s": info["steps"] / info["train_seconds"],
        "flowjax_fit_steps_per_s": peer.steps / peer.train_seconds,
        "ours_samples_per_s": lib.sampling_speed(
            lambda n: lib.sample_ours(est, observed[0], n, 0), n_samples
        ),
        "flowjax_samples_per_s": lib.sampling_speed(
            lambda n: lib.peer_sampler(peer)(observed[0], n, 0), n_samples
        ),
    }
    results["goals"] = report.goals(results)
    settings = {
        "quick": quick,
        "budgets": budgets,
        "steps": steps,
        "observations": n_obs,
        "samples": n_samples,
        "config": config,
        "peer_max_epochs": peer_epochs,
        "groups": 5,
        "seed": args.seed,
    }
    path = write_results(args.out_dir, "fmpe", settings, results)
    report.plot(results, args.out_dir / "fmpe.png")
    ours = lib.sample_ours(est, observed[0], n_samples, 0)
    exact = lib.exact_samples(model, observed[0], n_samples, 1)
    names = ["mu"] + [f"theta_{j + 1}" for j in range(5)]
    pair_plot(
        {n: ours[:, j] for j, n in enumerate(names)},
        args.out_dir / "fmpe_posterior.png",
        reference={n: exact[:, j] for j, n in enumerate(names)},
        labels=("flow matching", "exact posterior"),
        title=f"K = 5, {fact_budget} simulations",
    )
    print(report.markdown(results))
    log(f"wrote {path}")
    return 0 if np.isfinite(results["budgets"][0]["ours"]["mean"]) else 1


if __name__ == "__main__":
    sys.exit(main())
