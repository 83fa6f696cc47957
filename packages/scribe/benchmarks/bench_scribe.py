"""Speed and accuracy of scribe's likelihood, SVI step and VAE against peers.

On simulated NB counts (``--cells`` x ``--genes``, ``p = 0.3``, ``r_g ~
LogNormal(0, 1)``, minibatches of ``--batch-size`` cells):

1. the summed NB log-likelihood's value and gradient, scribe's ``nb_log_prob``
   vs numpyro's ``NegativeBinomialProbs`` (goals: >= 3x faster, relative
   difference <= 1e-4), both against a float64 scipy reference, also on a grid
   of large counts;
2. one jitted SVI step of the builder ``standard_model("nbdm", "canonical",
   "mean_field")`` vs the same model hand-written in NumPyro with
   ``AutoNormal`` (goal: ratio <= 1.05), also with scribe's NB in that model;
3. seconds per epoch of the builder VAE vs scvi-tools' ``SCVI(gene_likelihood=
   "nb")``, trained in turns in a subprocess under the scvi-tools interpreter
   (``--scvi-python``, ``$SCRIBE_SCVI_PYTHON`` or ``<repo>/.venv-scvi``).

Peers are in ``peers/``, timing helpers in ``timing.py`` and ``harness.py``, the
table and figure in ``scribe_report.py``; the README describes the method.
Writes ``scribe.json`` and ``scribe.png`` into ``--out-dir`` (default
``results/``) unless ``--no-save``.

Usage::

    python packages/scribe/benchmarks/bench_scribe.py            # full run
    python packages/scribe/benchmarks/bench_scribe.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import numpyro.distributions as dist  # noqa: E402
from harness import git_output, machine_info, versions, write_json_atomic  # noqa: E402
from numpyro.infer.autoguide import AutoNormal  # noqa: E402
from peers.numpyro_nb import make_plain_nb_model, numpyro_nb_log_prob  # noqa: E402
from peers.scipy_nb import large_count_accuracy, reference_value_and_grad  # noqa: E402
from peers.scvi_runner import DEFAULT_SCVI_PYTHON, scvi_record  # noqa: E402
from scribe_report import format_table, plot  # noqa: E402
from timing import (  # noqa: E402
    first_call,
    make_stepper,
    relative_difference,
    time_epochs,
    time_interleaved,
)

from scribe.models import presets  # noqa: E402
from scribe.models.components.distributions import NegativeBinomial  # noqa: E402
from scribe.models.components.special import nb_log_prob  # noqa: E402

N_CELLS = 10_000
N_GENES = 2_000
BATCH_SIZE = 512
P_TRUE = 0.3
P_EVAL = 0.25
R_EVAL_FACTOR = 1.25
SEED = 0
LEARNING_RATE = 1e-2
LL_SPEEDUP_GOAL = 3.0
LL_RELATIVE_GOAL = 1e-4
SVI_RATIO_GOAL = 1.05
VAE_LATENT_DIM = 8
VAE_HIDDEN_DIMS = (64,)
RESULTS_STEM = "scribe"
VERSIONED = ("scribe", "jax", "jaxlib", "numpyro", "optax", "flax", "numpy", "scipy")


def simulate_counts(
    n_cells: int, n_genes: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``int32`` NB(r, p = 0.3) counts (numpyro's convention), ``r_g ~ LogN(0, 1)``."""
    rng = np.random.default_rng(seed)
    r = rng.lognormal(0.0, 1.0, size=n_genes)
    counts = rng.negative_binomial(r, 1.0 - P_TRUE, size=(n_cells, n_genes))
    return counts.astype(np.int32), r


def bench_likelihood(
    counts: np.ndarray, r_true: np.ndarray, args: argparse.Namespace
) -> dict[str, Any]:
    """Part 1: NB log-lik value+grad on ``batch_size`` cells, speed and accuracy."""
    batch_np = counts[: args.batch_size]
    batch = jnp.asarray(batch_np, jnp.float32)
    r = jnp.asarray(R_EVAL_FACTOR * r_true, jnp.float32)
    p = jnp.asarray(P_EVAL, jnp.float32)

    def summed(fn: Callable[..., jax.Array]) -> Callable[..., Any]:
        return jax.jit(
            jax.value_and_grad(lambda r, p, k: jnp.sum(fn(k, r, p)), argnums=(0, 1))
        )

    fns_elementwise = {"scribe": nb_log_prob, "numpyro": numpyro_nb_log_prob}
    fns = {name: summed(fn) for name, fn in fns_elementwise.items()}
    results: dict[str, Any] = {}
    first_call_s: dict[str, float] = {}
    for name, fn in fns.items():
        results[name], first_call_s[name] = first_call(lambda fn=fn: fn(r, p, batch))
    times = time_interleaved(
        {name: (lambda fn=fn: fn(r, p, batch)) for name, fn in fns.items()},
        args.repeats,
        args.min_repeat_s,
    )
    for name, seconds in first_call_s.items():
        times[name]["first_call_s"] = seconds
    ref_value, ref_grad_r, ref_grad_p = reference_value_and_grad(
        batch_np,
        np.asarray(r, np.float64),
        float(np.float32(P_EVAL)),
    )
    (ours_value, (ours_r, ours_p)) = results["scribe"]
    (peer_value, (peer_r, peer_p)) = results["numpyro"]
    versus_numpyro = {
        "value": relative_difference(ours_value, peer_value),
        "grad_r": relative_difference(ours_r, peer_r),
        "grad_p": relative_difference(ours_p, peer_p),
    }
    versus_float64 = {
        name: {
            "value": relative_difference(value, ref_value),
            "grad_r": relative_difference(grad_r, ref_grad_r),
            "grad_p": relative_difference(grad_p, ref_grad_p),
        }
        for name, (value, (grad_r, grad_p)) in results.items()
    }
    speedup = times["numpyro"]["median_s"] / times["scribe"]["median_s"]
    return {
        "shape": list(batch_np.shape),
        "evaluated_at": {"p": P_EVAL, "r": f"{R_EVAL_FACTOR} * r_true"},
        "times": times,
        "speedup_numpyro_over_scribe": speedup,
        "values": {
            "scribe": float(ours_value),
            "numpyro": float(peer_value),
            "float64": ref_value,
        },
        "relative_difference_scribe_vs_numpyro": versus_numpyro,
        "relative_error_vs_float64": versus_float64,
        "large_counts": large_count_accuracy(fns_elementwise),
        "goals": {
            "speedup_ge_3": bool(speedup >= LL_SPEEDUP_GOAL),
            "relative_difference_le_1e-4": bool(
                max(versus_numpyro.values()) <= LL_RELATIVE_GOAL
            ),
        },
    }


def bench_svi_step(counts: jax.Array, args: argparse.Namespace) -> dict[str, Any]:
    """Part 2: SVI step of the builder NB model vs plain NumPyro + AutoNormal.

    The plain model also runs with scribe's ``NegativeBinomial``, isolating the
    overhead of the builders and guide from the faster likelihood.
    """
    model, guide, _ = presets.standard_model("nbdm", "canonical", "mean_field")
    steppers = {
        "scribe": make_stepper(
            model, guide, counts, args.batch_size, args.seed, LEARNING_RATE
        )
    }
    for name, negative_binomial in (
        ("plain_numpyro", dist.NegativeBinomialProbs),
        ("plain_scribe_nb", NegativeBinomial),
    ):
        plain = make_plain_nb_model(negative_binomial)
        steppers[name] = make_stepper(
            plain, AutoNormal(plain), counts, args.batch_size, args.seed, LEARNING_RATE
        )
    times = time_interleaved(
        {name: s[0] for name, s in steppers.items()}, args.repeats, args.min_repeat_s
    )
    for name, (_, seconds, _) in steppers.items():
        times[name]["first_call_s"] = seconds
    losses = {name: s[2]() for name, s in steppers.items()}
    ratio = times["scribe"]["median_s"] / times["plain_numpyro"]["median_s"]
    return {
        "batch_size": args.batch_size,
        "times": times,
        "ratio_scribe_over_plain": ratio,
        "ratio_scribe_over_plain_scribe_nb": times["scribe"]["median_s"]
        / times["plain_scribe_nb"]["median_s"],
        "last_loss": losses,
        "losses_finite": bool(all(math.isfinite(v) for v in losses.values())),
        "goals": {"ratio_le_1.05": bool(ratio <= SVI_RATIO_GOAL)},
    }


def bench_vae_epoch(
    counts_np: np.ndarray, counts: jax.Array, args: argparse.Namespace
) -> dict[str, Any]:
    """Part 3: seconds per epoch of the builder VAE vs scvi-tools' SCVI, in turns."""
    n_cells, n_genes = counts.shape
    steps_per_epoch = math.ceil(n_cells / args.batch_size)
    model, guide, _ = presets.standard_model(
        "nbdm",
        "linked",
        "vae",
        n_genes=n_genes,
        latent_dim=VAE_LATENT_DIM,
        hidden_dims=VAE_HIDDEN_DIMS,
    )
    step, compile_s, last_loss = make_stepper(
        model, guide, counts, args.batch_size, args.seed, LEARNING_RATE
    )
    warmup = time_epochs(step, steps_per_epoch, 1)
    scribe_times: list[float] = []

    def one_epoch() -> None:
        scribe_times.extend(time_epochs(step, steps_per_epoch, 1))

    scvi = scvi_record(counts_np, args, one_epoch, VAE_LATENT_DIM, VAE_HIDDEN_DIMS[0])
    scribe_times += time_epochs(step, steps_per_epoch, args.epochs - len(scribe_times))
    scribe_median = statistics.median(scribe_times)
    record: dict[str, Any] = {
        "steps_per_epoch": steps_per_epoch,
        "cells_per_epoch": steps_per_epoch * args.batch_size,
        "latent_dim": VAE_LATENT_DIM,
        "hidden_dims": list(VAE_HIDDEN_DIMS),
        "scribe": {
            "epoch_s": scribe_times,
            "median_epoch_s": scribe_median,
            "min_epoch_s": min(scribe_times),
            "first_step_s": compile_s,
            "warmup_epoch_s": warmup[0],
            "last_loss": last_loss(),
        },
        "scvi": scvi,
    }
    if scvi["available"]:
        record["ratio_scribe_over_scvi"] = scribe_median / scvi["median_epoch_s"]
        record["ratio_scribe_over_scvi_min"] = min(scribe_times) / scvi["min_epoch_s"]
    return record


def run_machine_info() -> dict[str, Any]:
    """Backend, CPUs, load, platform, commit and modified ``packages/scribe/src``."""
    general = machine_info()
    modified = git_output(HERE, "status", "--porcelain", "--", "../src")
    return {
        "backend": jax.default_backend(),
        "cpu_count": general["cpu_count"],
        "load_average_1_5_15": list(os.getloadavg()),
        "platform": general["platform"],
        "python": general["python"],
        "git_commit": git_output(HERE, "rev-parse", "HEAD"),
        "scribe_src_modified": None if modified is None else modified.splitlines(),
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cells", type=int, default=N_CELLS)
    parser.add_argument("--genes", type=int, default=N_GENES)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--repeats", type=int, default=15, help="timed repeats")
    parser.add_argument("--min-repeat-s", type=float, default=0.2, help="per repeat")
    parser.add_argument("--epochs", type=int, default=6, help="after one warm-up")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "--scvi-python",
        type=Path,
        default=None,
        help="python of a venv with scvi-tools (default: $SCRIBE_SCVI_PYTHON, "
        f"else {DEFAULT_SCVI_PYTHON} if it exists)",
    )
    parser.add_argument("--no-scvi", action="store_true", help="skip scvi-tools")
    parser.add_argument("--quick", action="store_true", help="2,000 x 500, 2 epochs")
    parser.add_argument("--no-save", action="store_true", help="write nothing")
    parser.add_argument("--out-dir", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    if args.quick:
        args.cells, args.genes, args.batch_size = 2_000, 500, 256
        args.repeats, args.min_repeat_s, args.epochs = 3, 0.05, 2
    if min(args.cells, args.genes, args.batch_size, args.repeats, args.epochs) < 1:
        parser.error("--cells, --genes, --batch-size, --repeats, --epochs must be >= 1")
    if args.batch_size > args.cells:
        parser.error(f"--batch-size {args.batch_size} exceeds --cells {args.cells}")
    if args.min_repeat_s < 0:
        parser.error("--min-repeat-s must be >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the three parts, print the table, write JSON and PNG."""
    args = parse_args(argv)
    machine = run_machine_info()
    info = {k: v or "not installed" for k, v in versions(VERSIONED).items()}
    print(
        f"scribe {info['scribe']}, jax {info['jax']}, numpyro {info['numpyro']} on "
        f"{machine['backend']} {machine['cpu_count']} CPUs, load "
        f"{machine['load_average_1_5_15']}; {args.cells:,} x {args.genes:,} counts, "
        f"batch {args.batch_size}",
        flush=True,
    )
    start = time.perf_counter()
    counts_np, r_true = simulate_counts(args.cells, args.genes, args.seed)
    counts = jnp.asarray(counts_np, jnp.float32)
    ll = bench_likelihood(counts_np, r_true, args)
    print(
        f"1. likelihood: {ll['speedup_numpyro_over_scribe']:.2f}x "
        f"({time.perf_counter() - start:.0f} s)",
        flush=True,
    )
    svi = bench_svi_step(counts, args)
    print(
        f"2. SVI step: {svi['ratio_scribe_over_plain']:.3f}x "
        f"({time.perf_counter() - start:.0f} s)",
        flush=True,
    )
    vae = bench_vae_epoch(counts_np, counts, args)
    print(f"3. VAE epoch ({time.perf_counter() - start:.0f} s)", flush=True)
    elapsed = time.perf_counter() - start
    machine["load_average_end_1_5_15"] = list(os.getloadavg())
    print()
    goals = ll["goals"] | svi["goals"]
    goal_values = {
        "likelihood_speedup_min": LL_SPEEDUP_GOAL,
        "likelihood_relative_difference_max": LL_RELATIVE_GOAL,
        "svi_ratio_max": SVI_RATIO_GOAL,
    }
    print(format_table(ll, svi, vae, goal_values))
    print(
        "\ngoals: "
        + ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in goals.items())
    )
    print(f"total {elapsed:.1f} s")
    if args.no_save:
        return 0
    payload = {
        "benchmark": "scribe: NB log-likelihood, SVI step, VAE epoch vs peers",
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "versions": info,
        "config": {
            "cells": args.cells,
            "genes": args.genes,
            "batch_size": args.batch_size,
            "p_true": P_TRUE,
            "r_true": "LogNormal(0, 1) per gene",
            "seed": args.seed,
            "repeats": args.repeats,
            "min_repeat_s": args.min_repeat_s,
            "epochs": args.epochs,
            "optimizer": f"optax.adam({LEARNING_RATE})",
            "quick": args.quick,
            "time": "median over interleaved repeats of blocked seconds per call",
        },
        "goals": goal_values | {"met": goals},
        "total_s": elapsed,
        "likelihood": ll,
        "svi_step": svi,
        "vae_epoch": vae,
    }
    json_path = args.out_dir / f"{RESULTS_STEM}.json"
    write_json_atomic(json_path, payload)
    title = (
        f"scribe, {args.cells:,} x {args.genes:,} NB counts; jax {info['jax']}, "
        f"numpyro {info['numpyro']}, {machine['backend']} {machine['cpu_count']} CPUs"
    )
    plot(ll, svi, vae, goal_values, title, args.out_dir / f"{RESULTS_STEM}.png")
    print(f"wrote {json_path} and {RESULTS_STEM}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
