"""Speed and accuracy of scribe's likelihood, SVI step and VAE against peers.

Three parts on simulated NB counts: (1) the NB log-likelihood's value and
gradient vs numpyro and a float64 scipy reference, (2) one SVI step of the
builder model vs hand-written NumPyro with ``AutoNormal``, (3) seconds per VAE
epoch vs scvi-tools' ``SCVI`` (run in its own interpreter, in turns). The
package README describes the method and the results. Writes ``scribe.json``
and ``scribe.png`` into ``--out-dir`` unless ``--no-save``; ``--quick`` is a
smoke run.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import numpyro.distributions as dist  # noqa: E402
from harness import run_record, write_results  # noqa: E402
from numpyro.infer.autoguide import AutoNormal  # noqa: E402
from peers.numpyro_nb import make_plain_nb_model, numpyro_nb_log_prob  # noqa: E402
from peers.scipy_nb import large_count_accuracy, reference_value_and_grad  # noqa: E402
from peers.scvi_runner import scvi_record  # noqa: E402
from scribe_report import format_goals, format_table, plot  # noqa: E402
from timing import (  # noqa: E402
    make_stepper,
    time_compiled,
    time_epochs,
    time_interleaved,
    value_and_grad_differences,
)

from scribe.datasets import simulate_nb_counts  # noqa: E402
from scribe.models import presets  # noqa: E402
from scribe.models.components.distributions import NegativeBinomial  # noqa: E402
from scribe.models.components.special import nb_log_prob  # noqa: E402

P_TRUE = 0.3
P_EVAL = 0.25
R_EVAL_FACTOR = 1.25
LEARNING_RATE = 1e-2
GOALS = {
    "likelihood_speedup_min": 3.0,
    "likelihood_relative_difference_max": 1e-4,
    "svi_ratio_max": 1.05,
}
VAE = {"latent_dim": 8, "hidden_dims": (64,)}
RESULTS_STEM = "scribe"
NOT_CONFIG = ("scvi_python", "no_scvi", "no_save", "out_dir")  # options, not setup
VERSIONED = ("scribe", "jax", "jaxlib", "numpyro", "optax", "flax", "numpy", "scipy")


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
    results, times = time_compiled(
        {name: (lambda fn=fn: fn(r, p, batch)) for name, fn in fns.items()},
        args.repeats,
        args.min_repeat_s,
    )
    ref_value, ref_grad_r, ref_grad_p = reference_value_and_grad(
        batch_np,
        np.asarray(r, np.float64),
        float(np.float32(P_EVAL)),
    )
    reference = (ref_value, (ref_grad_r, ref_grad_p))
    versus_numpyro = value_and_grad_differences(results["scribe"], results["numpyro"])
    versus_float64 = {
        name: value_and_grad_differences(result, reference)
        for name, result in results.items()
    }
    speedup = times["numpyro"]["median_s"] / times["scribe"]["median_s"]
    return {
        "shape": list(batch_np.shape),
        "evaluated_at": {"p": P_EVAL, "r": f"{R_EVAL_FACTOR} * r_true"},
        "times": times,
        "speedup_numpyro_over_scribe": speedup,
        "values": {
            "scribe": float(results["scribe"][0]),
            "numpyro": float(results["numpyro"][0]),
            "float64": ref_value,
        },
        "relative_difference_scribe_vs_numpyro": versus_numpyro,
        "relative_error_vs_float64": versus_float64,
        "large_counts": large_count_accuracy(fns_elementwise),
        "goals": {
            "speedup_ge_3": bool(speedup >= GOALS["likelihood_speedup_min"]),
            "relative_difference_le_1e-4": bool(
                max(versus_numpyro.values())
                <= GOALS["likelihood_relative_difference_max"]
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
        "goals": {"ratio_le_1.05": bool(ratio <= GOALS["svi_ratio_max"])},
    }


def bench_vae_epoch(
    counts_np: np.ndarray, counts: jax.Array, args: argparse.Namespace
) -> dict[str, Any]:
    """Part 3: seconds per epoch of the builder VAE vs scvi-tools' SCVI, in turns."""
    n_cells, n_genes = counts.shape
    steps_per_epoch = math.ceil(n_cells / args.batch_size)
    model, guide, _ = presets.standard_model(
        "nbdm", "linked", "vae", n_genes=n_genes, **VAE
    )
    step, compile_s, last_loss = make_stepper(
        model, guide, counts, args.batch_size, args.seed, LEARNING_RATE
    )
    warmup = time_epochs(step, steps_per_epoch, 1)
    scribe_times: list[float] = []

    def one_epoch() -> None:
        scribe_times.extend(time_epochs(step, steps_per_epoch, 1))

    scvi = scvi_record(
        counts_np, args, one_epoch, VAE["latent_dim"], VAE["hidden_dims"][0]
    )
    scribe_times += time_epochs(step, steps_per_epoch, args.epochs - len(scribe_times))
    scribe_median = statistics.median(scribe_times)
    record: dict[str, Any] = {
        "steps_per_epoch": steps_per_epoch,
        "cells_per_epoch": steps_per_epoch * args.batch_size,
        "latent_dim": VAE["latent_dim"],
        "hidden_dims": list(VAE["hidden_dims"]),
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


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n-cells", type=int, default=10_000)
    parser.add_argument("--n-genes", type=int, default=2_000)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=15, help="timed repeats")
    parser.add_argument("--min-repeat-s", type=float, default=0.2, help="per repeat")
    parser.add_argument("--epochs", type=int, default=6, help="after one warm-up")
    parser.add_argument("--seed", type=int, default=0)
    scvi_help = "python with scvi-tools (else $SCRIBE_SCVI_PYTHON, <repo>/.venv-scvi)"
    parser.add_argument("--scvi-python", type=Path, help=scvi_help)
    parser.add_argument("--no-scvi", action="store_true", help="skip scvi-tools")
    parser.add_argument("--quick", action="store_true", help="2,000 x 500, 2 epochs")
    parser.add_argument("--no-save", action="store_true", help="write nothing")
    parser.add_argument("--out-dir", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    if args.quick:
        args.n_cells, args.n_genes, args.batch_size = 2_000, 500, 256
        args.repeats, args.min_repeat_s, args.epochs = 3, 0.05, 2
    sizes = (args.n_cells, args.n_genes, args.batch_size, args.repeats, args.epochs)
    if min(sizes) < 1:
        parser.error("--n-cells, --n-genes, --batch-size, --repeats, --epochs: >= 1")
    if args.batch_size > args.n_cells:
        parser.error(f"--batch-size {args.batch_size} exceeds --n-cells {args.n_cells}")
    if args.min_repeat_s < 0:
        parser.error("--min-repeat-s must be >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the three parts, print the table, write JSON and PNG."""
    args = parse_args(argv)
    run = run_record(VERSIONED, backend=jax.default_backend())
    machine, info = run["machine"], run["versions"]
    print(
        f"scribe {info['scribe']}, jax {info['jax']}, numpyro {info['numpyro']} on "
        f"{machine['backend']} {machine['cpu_count']} CPUs, load "
        f"{machine['load_average']}; {args.n_cells:,} x {args.n_genes:,} counts, "
        f"batch {args.batch_size}",
        flush=True,
    )
    start = time.perf_counter()

    def progress(part: str) -> None:
        print(f"{part} ({time.perf_counter() - start:.0f} s)", flush=True)

    counts_np, r_true = simulate_nb_counts(
        args.n_cells, args.n_genes, P_TRUE, args.seed
    )
    counts_np = counts_np.astype(np.int32)
    counts = jnp.asarray(counts_np, jnp.float32)
    ll = bench_likelihood(counts_np, r_true, args)
    progress(f"1. likelihood: {ll['speedup_numpyro_over_scribe']:.2f}x")
    svi = bench_svi_step(counts, args)
    progress(f"2. SVI step: {svi['ratio_scribe_over_plain']:.3f}x")
    vae = bench_vae_epoch(counts_np, counts, args)
    progress("3. VAE epoch")
    elapsed = time.perf_counter() - start
    goals = ll["goals"] | svi["goals"]
    print(f"\n{format_table(ll, svi, vae, GOALS)}\n\n{format_goals(goals)}")
    print(f"total {elapsed:.1f} s")
    if args.no_save:
        return 0
    helper = vae["scvi"].get("helper", {}).get("versions", {})
    info |= {name: helper.get(name) for name in ("scvi-tools", "torch", "lightning")}
    config = {k: v for k, v in vars(args).items() if k not in NOT_CONFIG} | {
        "p_true": P_TRUE,
        "r_true": "LogNormal(0, 1) per gene",
        "optimizer": f"optax.adam({LEARNING_RATE})",
        "time": "median over interleaved repeats of blocked seconds per call",
    }
    json_path = args.out_dir / f"{RESULTS_STEM}.json"
    write_results(
        json_path,
        run,
        {
            "benchmark": "scribe: NB log-likelihood, SVI step, VAE epoch vs peers",
            "config": config,
            "goals": GOALS | {"met": goals},
            "total_s": elapsed,
            "likelihood": ll,
            "svi_step": svi,
            "vae_epoch": vae,
        },
    )
    title = (
        f"scribe, {args.n_cells:,} x {args.n_genes:,} NB counts; jax {info['jax']}, "
        f"numpyro {info['numpyro']}, {machine['backend']} {machine['cpu_count']} CPUs"
    )
    plot(ll, svi, vae, GOALS, title, args.out_dir / f"{RESULTS_STEM}.png")
    print(f"wrote {json_path} and {RESULTS_STEM}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
