"""Speed and accuracy of scribe's likelihood, SVI step and VAE against peers.

What is measured
----------------
Simulated counts, ``10,000`` cells x ``2,000`` genes (``--cells``, ``--genes``),
drawn with NumPy (``--seed``): ``counts[c, g] ~ NB(r_g, p)`` in numpyro's
``NegativeBinomialProbs(r, p)`` convention (mean ``r p / (1 - p)``) with
``p = 0.3`` and ``r_g ~ LogNormal(0, 1)``. Minibatches have ``512`` cells
(``--batch-size``).

1. **NB log-likelihood**, value and gradient w.r.t. ``(r, p)`` of the sum over
   the first ``512 x 2,000`` block of counts, jitted, float32: scribe's
   ``nb_log_prob(counts, r, p)`` against numpyro's
   ``dist.NegativeBinomialProbs(r, p).log_prob(counts)``. It is evaluated away
   from the truth (``p = 0.25``, ``r = 1.25 r_true``), where the gradient w.r.t.
   ``p`` is not close to zero. Reported: median ms per call of each, the speed
   ratio numpyro / scribe (goal ``>= 3``), the relative difference of the values
   (``|a - b| / |b|``) and of the gradients (``||a - b||_2 / ||b||_2`` for ``r``
   and ``p`` separately; goal ``<= 1e-4``), and the relative error of both
   against a float64 reference (``scipy.stats.nbinom.logpmf`` with scipy's
   ``p = 1 - p``; gradients from ``scipy.special.digamma``).
   **Large counts**: the elementwise float32 log-probability of both on a grid
   of ``k`` up to ``10^5`` (0 and 41 log-spaced values), ``r`` from ``10^-2``
   to ``10^3`` and ``p`` in ``{0.01, 0.3, 0.7, 0.9, 0.99}``, against
   ``scipy.stats.nbinom.logpmf`` in float64 at the same float32-rounded inputs:
   the maximum absolute error (and where it occurs), the same over the
   plausible points (``log P >= -100``; far from them ``|log P|`` reaches
   ``10^5`` and float32's own rounding of it, ~0.01, dominates) and the
   maximum error relative to ``max(1, |log P|)``.
2. **One SVI step**: ``jax.jit`` of numpyro's ``SVI.update`` with
   ``Trace_ELBO`` and the same ``optax.adam(1e-2)``, ``batch_size`` cells
   subsampled by the model's cell plate, for the builder model
   ``presets.standard_model("nbdm", "canonical", "mean_field")`` (``p ~ Beta(1,
   1)``, ``r ~ LogNormal(0, 1)`` per gene, ``NegativeBinomialLikelihood``, the
   ``GuideBuilder`` mean-field guide) against a hand-written NumPyro model of the
   same thing (``dist.Beta``, ``dist.LogNormal`` in a gene plate,
   ``numpyro.plate(..., subsample_size=...)``, ``dist.NegativeBinomialProbs``)
   with ``AutoNormal``. Reported: median ms per step of each and the ratio
   scribe / plain (goal ``<= 1.05``). The plain model also runs with scribe's
   ``NegativeBinomial`` distribution (the builder's likelihood) in place of
   ``NegativeBinomialProbs``: scribe / that isolates the overhead of the
   builders and the mean-field guide from the faster likelihood.
3. **Seconds per epoch of a VAE** (when an interpreter with scvi-tools is
   found): the builder VAE ``presets.standard_model("nbdm", "linked", "vae",
   n_genes=...)`` (latent 8, hidden ``(64,)``), trained by the jitted SVI step
   above, one epoch being ``ceil(cells / batch)`` steps of ``batch`` randomly
   subsampled cells, against ``scvi.model.SCVI(adata, gene_likelihood="nb",
   n_latent=8, n_hidden=64)`` trained with ``batch_size`` and ``train_size=1``
   on the same counts (``benchmarks/peers/scvi_epoch.py``, run by that interpreter in
   a subprocess: scvi-tools and PyTorch stay out of the main environment). The
   two train in turns, one epoch each (the helper waits for a line on its stdin
   after every epoch). Per epoch times exclude the first (warm-up) epoch; the
   JIT compile of the SVI step and scvi's first epoch and set-up are reported
   on their own. The fastest epoch of each is kept too: PyTorch's thread pool
   slows down far more than XLA's when another process takes the cores.

Timing: every jitted function is compiled and run once before timing (its
first-call seconds are kept as ``first_call_s``); the two peers of a
comparison are then timed in alternating repeats, each repeat lasting at least
``--min-repeat-s``, and the reported time is the median over ``--repeats``
repeats (every repeat is kept in the JSON), so load from other processes on a
shared machine hits both alike.

Outputs
-------
A table on stdout, ``scribe.json`` (every number, the goals, versions, machine
information) and ``scribe.png`` (bar charts), both written atomically into
``--out-dir`` (default: ``results/`` next to this script) unless ``--no-save``.

Usage::

    python packages/scribe/benchmarks/bench_scribe.py            # full run
    python packages/scribe/benchmarks/bench_scribe.py --quick    # smoke run
    python packages/scribe/benchmarks/bench_scribe.py --scvi-python PATH/bin/python

The scvi-tools interpreter is ``--scvi-python``, else ``$SCRIBE_SCVI_PYTHON``,
else ``<repo>/.venv-scvi/bin/python`` if it exists; without one, part 3 reports
"scvi-tools not available".
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import os
import platform
import queue
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import optax
from numpyro.infer import SVI, Trace_ELBO
from numpyro.infer.autoguide import AutoNormal
from scipy import special, stats

from scribe.io import atomic_write
from scribe.models import presets
from scribe.models.components.distributions import NegativeBinomial
from scribe.models.components.special import nb_log_prob

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
LARGE_K_MAX = 1e5
LARGE_R_RANGE = (1e-2, 1e3)
LARGE_P_VALUES = (0.01, 0.3, 0.7, 0.9, 0.99)
PLAUSIBLE_LOG_PROB = -100.0
VAE_LATENT_DIM = 8
VAE_HIDDEN_DIMS = (64,)
DEFAULT_SCVI_PYTHON = (
    Path(__file__).resolve().parents[3] / ".venv-scvi" / "bin" / "python"
)
SCVI_HELPER = Path(__file__).resolve().parent / "peers" / "scvi_epoch.py"
SCVI_TIMEOUT_S = 600
SCVI_MARKER = "SCVI_EPOCH_DONE"
RESULTS_STEM = "scribe"
VERSIONED = ("jax", "jaxlib", "numpyro", "optax", "flax", "numpy", "scipy")


# ------------------------------------------------------------------ utilities


def simulate_counts(
    n_cells: int, n_genes: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """NB counts with ``p = 0.3`` and ``r_g ~ LogNormal(0, 1)``.

    Parameters
    ----------
    n_cells, n_genes : int
        Shape of the counts matrix.
    seed : int
        NumPy seed.

    Returns
    -------
    counts : ndarray
        ``int32[n_cells, n_genes]``; NumPy's ``negative_binomial(r, 1 - p)``
        counts failures, numpyro's ``NegativeBinomialProbs(r, p)`` convention.
    r : ndarray
        ``float64[n_genes]``, the true dispersions.
    """
    rng = np.random.default_rng(seed)
    r = rng.lognormal(0.0, 1.0, size=n_genes)
    counts = rng.negative_binomial(r, 1.0 - P_TRUE, size=(n_cells, n_genes))
    return counts.astype(np.int32), r


def first_call(fn: Callable[[], Any]) -> tuple[Any, float]:
    """Result and seconds of one blocked call (the first: trace + compile + run)."""
    start = time.perf_counter()
    result = jax.block_until_ready(fn())
    return result, time.perf_counter() - start


def time_interleaved(
    functions: Mapping[str, Callable[[], Any]], repeats: int, min_repeat_s: float
) -> dict[str, dict[str, Any]]:
    """Median seconds per call of each function, repeats alternating.

    Parameters
    ----------
    functions : mapping of str to callable
        Argument-free calls (already compiled); each result is blocked on.
    repeats : int
        Timed repeats per function.
    min_repeat_s : float
        Shortest duration of one repeat; sets the calls per repeat.

    Returns
    -------
    dict
        Per name: ``median_s``, ``min_s``, ``times_s`` (seconds per call, one per
        repeat) and ``calls_per_repeat``.
    """
    calls: dict[str, int] = {}
    for name, fn in functions.items():
        start = time.perf_counter()
        jax.block_until_ready(fn())
        once = max(time.perf_counter() - start, 1e-7)
        calls[name] = max(1, math.ceil(min_repeat_s / once))
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, fn in functions.items():
            start = time.perf_counter()
            for _ in range(calls[name]):
                jax.block_until_ready(fn())
            times[name].append((time.perf_counter() - start) / calls[name])
    return {
        name: {
            "median_s": statistics.median(values),
            "min_s": min(values),
            "times_s": values,
            "calls_per_repeat": calls[name],
        }
        for name, values in times.items()
    }


def relative_difference(got: Any, expected: Any) -> float:
    """``||got - expected||_2 / ||expected||_2`` in float64."""
    got64 = np.asarray(got, np.float64)
    expected64 = np.asarray(expected, np.float64)
    return float(np.linalg.norm(got64 - expected64) / np.linalg.norm(expected64))


# ------------------------------------------------------------------ 1. likelihood


def reference_value_and_grad(
    counts: np.ndarray, r: np.ndarray, p: float
) -> tuple[float, np.ndarray, float]:
    """Float64 sum of NB log-probabilities and its gradient w.r.t. ``(r, p)``.

    Parameters
    ----------
    counts : ndarray
        ``[cells, genes]``.
    r : ndarray
        ``[genes]``.
    p : float
        numpyro's success probability (scipy's is ``1 - p``).

    Returns
    -------
    value : float
    grad_r : ndarray
        ``sum_c digamma(k + r) - digamma(r) + log(1 - p)``.
    grad_p : float
        ``sum k / p - cells * sum_g r_g / (1 - p)``.
    """
    k = counts.astype(np.float64)
    value = float(np.sum(stats.nbinom.logpmf(k, r, 1.0 - p)))
    cells = k.shape[0]
    grad_r = np.sum(special.digamma(k + r), axis=0) - cells * (
        special.digamma(r) - np.log1p(-p)
    )
    grad_p = float(np.sum(k) / p - cells * np.sum(r) / (1.0 - p))
    return value, grad_r, grad_p


def numpyro_nb_log_prob(counts: jax.Array, r: jax.Array, p: jax.Array) -> jax.Array:
    """Elementwise ``dist.NegativeBinomialProbs(r, p).log_prob(counts)``."""
    return dist.NegativeBinomialProbs(r, p).log_prob(counts)


def large_count_accuracy() -> dict[str, Any]:
    """Float32 log-probabilities of both on a grid of large counts vs scipy float64.

    Returns
    -------
    dict
        The grid and, per implementation, ``max_abs_error``, where it occurs
        (``at_k``, ``at_r``, ``at_p``, ``reference``) and
        ``max_error_relative_to_max1_abs_ref``.
    """
    k = np.concatenate([[0.0], np.round(np.logspace(0.0, math.log10(LARGE_K_MAX), 41))])
    r = np.logspace(*np.log10(LARGE_R_RANGE), 26)
    p = np.asarray(LARGE_P_VALUES)
    grid_p, grid_r, grid_k = np.meshgrid(p, r, k, indexing="ij")
    inputs32 = [x.astype(np.float32) for x in (grid_k, grid_r, grid_p)]
    k64, r64, p64 = (x.astype(np.float64) for x in inputs32)
    reference = stats.nbinom.logpmf(k64, r64, 1.0 - p64)
    plausible = reference >= PLAUSIBLE_LOG_PROB
    record: dict[str, Any] = {
        "k_values": k.tolist(),
        "r_range": list(LARGE_R_RANGE),
        "r_points": int(r.size),
        "p_values": list(LARGE_P_VALUES),
        "reference": "scipy.stats.nbinom.logpmf float64 at the float32 inputs",
        "plausible": f"points with reference log P >= {PLAUSIBLE_LOG_PROB:g}",
        "plausible_points": int(np.sum(plausible)),
    }
    for name, fn in (("scribe", nb_log_prob), ("numpyro", numpyro_nb_log_prob)):
        got = np.asarray(jax.jit(fn)(*(jnp.asarray(x) for x in inputs32)), np.float64)
        error = np.abs(got - reference)
        at = np.unravel_index(int(np.argmax(error)), error.shape)
        record[name] = {
            "max_abs_error": float(error[at]),
            "at_k": float(k64[at]),
            "at_r": float(r64[at]),
            "at_p": float(p64[at]),
            "reference_at_max": float(reference[at]),
            "max_error_relative_to_max1_abs_ref": float(
                np.max(error / np.maximum(1.0, np.abs(reference)))
            ),
            "max_abs_error_plausible": float(np.max(error[plausible])),
            "all_finite": bool(np.all(np.isfinite(got))),
        }
    return record


def bench_likelihood(
    counts: np.ndarray, r_true: np.ndarray, args: argparse.Namespace
) -> dict[str, Any]:
    """Part 1: value and gradient of the summed NB log-likelihood, and accuracy.

    Parameters
    ----------
    counts : ndarray
        The full counts matrix; its first ``batch_size`` rows are used.
    r_true : ndarray
        True dispersions; evaluated at ``1.25 r_true`` and ``p = 0.25``.
    args : argparse.Namespace
        ``batch_size``, ``repeats``, ``min_repeat_s``.

    Returns
    -------
    dict
        Timings, ratio, differences, float64 errors, large-count accuracy, goals.
    """
    batch_np = counts[: args.batch_size]
    batch = jnp.asarray(batch_np, jnp.float32)
    r = jnp.asarray(R_EVAL_FACTOR * r_true, jnp.float32)
    p = jnp.asarray(P_EVAL, jnp.float32)

    def summed(fn: Callable[..., jax.Array]) -> Callable[..., Any]:
        return jax.jit(
            jax.value_and_grad(lambda r, p, k: jnp.sum(fn(k, r, p)), argnums=(0, 1))
        )

    fns = {"scribe": summed(nb_log_prob), "numpyro": summed(numpyro_nb_log_prob)}
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
        "large_counts": large_count_accuracy(),
        "goals": {
            "speedup_ge_3": bool(speedup >= LL_SPEEDUP_GOAL),
            "relative_difference_le_1e-4": bool(
                max(versus_numpyro.values()) <= LL_RELATIVE_GOAL
            ),
        },
    }


# ------------------------------------------------------------------ 2. SVI step


def make_plain_nb_model(
    negative_binomial: type[dist.NegativeBinomialProbs],
) -> Callable[..., None]:
    """The canonical NB model written directly in NumPyro (the peer).

    Parameters
    ----------
    negative_binomial : type
        The counts' distribution class, called as ``negative_binomial(r, p)``:
        numpyro's ``NegativeBinomialProbs`` or scribe's ``NegativeBinomial``.

    Returns
    -------
    callable
        ``model(n_cells, n_genes, counts=None, batch_size=None)``: ``p ~ Beta(1,
        1)``, ``r_g ~ LogNormal(0, 1)``, counts of a cell ``~ NB(r, p)`` over
        genes, minibatched by the cell plate.
    """

    def model(
        n_cells: int,
        n_genes: int,
        counts: jax.Array | None = None,
        batch_size: int | None = None,
    ) -> None:
        p = numpyro.sample("p", dist.Beta(1.0, 1.0))
        with numpyro.plate("genes", n_genes):
            r = numpyro.sample("r", dist.LogNormal(0.0, 1.0))
        with numpyro.plate("cells", n_cells, subsample_size=batch_size) as idx:
            observed = None if counts is None else jnp.take(counts, idx, axis=0)
            numpyro.sample("counts", negative_binomial(r, p).to_event(1), obs=observed)

    return model


def make_stepper(
    model: Callable[..., None],
    guide: Callable[..., None],
    counts: jax.Array,
    batch_size: int,
    seed: int,
) -> tuple[Callable[[], Any], float, Callable[[], float]]:
    """A jitted SVI step that carries its own state.

    Parameters
    ----------
    model, guide : callable
        Called as ``fn(n_cells, n_genes, counts=..., batch_size=...)``.
    counts : Array
        ``[cells, genes]`` float32, passed to the jitted step as an argument.
    batch_size : int
        Cells per step (the plate's ``subsample_size``).
    seed : int
        Key of ``svi.init``.

    Returns
    -------
    step : callable
        One ``svi.update``; returns the new state and loss.
    first_call_s : float
        Seconds of the first step (trace, compile and run).
    last_loss : callable
        The loss of the latest step.
    """
    n_cells, n_genes = counts.shape
    svi = SVI(model, guide, optax.adam(LEARNING_RATE), Trace_ELBO())
    state = [
        svi.init(
            jax.random.key(seed), n_cells, n_genes, counts=counts, batch_size=batch_size
        )
    ]
    loss = [math.nan]
    update = jax.jit(
        lambda s, c: svi.update(s, n_cells, n_genes, counts=c, batch_size=batch_size)
    )

    def step() -> Any:
        state[0], loss[0] = update(state[0], counts)
        return state[0], loss[0]

    _, seconds = first_call(step)
    return step, seconds, lambda: float(loss[0])


def bench_svi_step(counts: jax.Array, args: argparse.Namespace) -> dict[str, Any]:
    """Part 2: one SVI step of the builder NB model vs plain NumPyro + AutoNormal.

    The plain model runs twice: with numpyro's ``NegativeBinomialProbs`` (the
    peer of the goal) and with scribe's ``NegativeBinomial`` (the same
    likelihood as the builder model, so the ratio isolates the builder and
    guide overhead).

    Parameters
    ----------
    counts : Array
        ``[cells, genes]`` float32.
    args : argparse.Namespace
        ``batch_size``, ``seed``, ``repeats``, ``min_repeat_s``.

    Returns
    -------
    dict
        Timings, ratio, last losses, goal.
    """
    model, guide, _ = presets.standard_model("nbdm", "canonical", "mean_field")
    steppers = {
        "scribe": make_stepper(model, guide, counts, args.batch_size, args.seed)
    }
    for name, negative_binomial in (
        ("plain_numpyro", dist.NegativeBinomialProbs),
        ("plain_scribe_nb", NegativeBinomial),
    ):
        plain = make_plain_nb_model(negative_binomial)
        steppers[name] = make_stepper(
            plain, AutoNormal(plain), counts, args.batch_size, args.seed
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


# ------------------------------------------------------------------ 3. VAE epochs


class ScviUnavailable(RuntimeError):
    """The scvi-tools helper could not start, failed or stalled."""


def find_scvi_python(requested: Path | None) -> Path | None:
    """The interpreter for the scvi-tools run: flag, environment, default path."""
    if requested is not None:
        return requested
    from_env = os.environ.get("SCRIBE_SCVI_PYTHON")
    if from_env:
        return Path(from_env)
    return DEFAULT_SCVI_PYTHON if DEFAULT_SCVI_PYTHON.exists() else None


def scvi_command(
    python: Path, counts_path: Path, out_path: Path, args: argparse.Namespace
) -> list[str]:
    """The helper's command line: ``epochs + 1`` epochs, handshake after each."""
    return [
        str(python),
        str(SCVI_HELPER),
        "--counts",
        str(counts_path),
        "--out",
        str(out_path),
        "--epochs",
        str(args.epochs + 1),
        "--batch-size",
        str(args.batch_size),
        "--n-latent",
        str(VAE_LATENT_DIM),
        "--n-hidden",
        str(VAE_HIDDEN_DIMS[0]),
        "--seed",
        str(args.seed),
        "--handshake",
    ]


def pump_lines(stream: Any, lines: queue.Queue[str | None]) -> None:
    """Put every line of ``stream`` into ``lines``, then ``None`` at its end."""
    for line in stream:
        lines.put(line)
    lines.put(None)


def run_scvi_interleaved(
    python: Path,
    counts: np.ndarray,
    args: argparse.Namespace,
    between: Callable[[], None],
) -> dict[str, Any]:
    """Time SCVI's epochs in a subprocess, calling ``between`` before each.

    The helper (``--handshake``) prints :data:`SCVI_MARKER` after every epoch
    and waits for a line on its stdin before going on, so the two trainers run
    in turns: SCVI's warm-up epoch, then ``between()`` (one scribe epoch) and
    one SCVI epoch, ``args.epochs`` times. An SCVI epoch is timed here, from
    the go line to its marker.

    Parameters
    ----------
    python : Path
        Interpreter with scvi-tools installed.
    counts : ndarray
        ``int32[cells, genes]``.
    args : argparse.Namespace
        ``batch_size``, ``epochs``, ``seed``.
    between : callable
        Called before every timed SCVI epoch.

    Returns
    -------
    dict
        ``available`` and either the timings and the helper's record, or
        ``reason``.

    Raises
    ------
    ScviUnavailable
        If the helper cannot start, fails, or stalls past ``SCVI_TIMEOUT_S``.
    """
    with tempfile.TemporaryDirectory() as tmp:
        counts_path, out_path = Path(tmp) / "counts.npy", Path(tmp) / "scvi.json"
        np.save(counts_path, counts)
        log_path = Path(tmp) / "stderr.txt"
        with log_path.open("w") as log:
            start = time.perf_counter()
            try:
                proc = subprocess.Popen(
                    scvi_command(python, counts_path, out_path, args),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    text=True,
                )
            except OSError as error:
                raise ScviUnavailable(f"{type(error).__name__}: {error}") from error
            lines: queue.Queue[str | None] = queue.Queue()
            threading.Thread(
                target=pump_lines, args=(proc.stdout, lines), daemon=True
            ).start()

            def wait_epoch() -> None:
                deadline = time.perf_counter() + SCVI_TIMEOUT_S
                while True:
                    try:
                        line = lines.get(timeout=max(deadline - time.perf_counter(), 0))
                    except queue.Empty:
                        proc.kill()
                        raise ScviUnavailable(
                            f"no epoch within {SCVI_TIMEOUT_S} s"
                        ) from None
                    if line is None:
                        proc.wait()
                        tail = log_path.read_text().strip().splitlines()[-5:]
                        raise ScviUnavailable(
                            f"{python} exited {proc.returncode}: " + " | ".join(tail)
                        )
                    if line.startswith(SCVI_MARKER):
                        return

            try:
                wait_epoch()
                first_epoch_s = time.perf_counter() - start
                epoch_s = []
                for _ in range(args.epochs):
                    between()
                    tick = time.perf_counter()
                    proc.stdin.write("go\n")
                    proc.stdin.flush()
                    wait_epoch()
                    epoch_s.append(time.perf_counter() - tick)
                proc.stdin.write("go\n")
                proc.stdin.close()
                returncode = proc.wait(timeout=SCVI_TIMEOUT_S)
            finally:
                if proc.poll() is None:
                    proc.kill()
        if returncode != 0 or not out_path.exists():
            tail = log_path.read_text().strip().splitlines()[-5:]
            raise ScviUnavailable(f"{python} exited {returncode}: " + " | ".join(tail))
        helper = json.loads(out_path.read_text())
    return {
        "available": True,
        "python": str(python),
        "epoch_s": epoch_s,
        "median_epoch_s": statistics.median(epoch_s),
        "min_epoch_s": min(epoch_s),
        "start_to_first_epoch_s": first_epoch_s,
        "helper": helper,
    }


def time_vae_epochs(
    step: Callable[[], Any], steps_per_epoch: int, epochs: int
) -> list[float]:
    """Seconds of each of ``epochs`` epochs of ``steps_per_epoch`` SVI steps."""
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        for _ in range(steps_per_epoch):
            result = step()
        jax.block_until_ready(result)
        times.append(time.perf_counter() - start)
    return times


def bench_vae_epoch(
    counts_np: np.ndarray, counts: jax.Array, args: argparse.Namespace
) -> dict[str, Any]:
    """Part 3: seconds per epoch of the builder VAE vs scvi-tools' SCVI.

    Parameters
    ----------
    counts_np : ndarray
        ``int32[cells, genes]`` for the scvi subprocess.
    counts : Array
        The same counts, float32, for scribe.
    args : argparse.Namespace
        ``batch_size``, ``epochs``, ``seed``, ``scvi_python``, ``no_scvi``.

    Returns
    -------
    dict
        scribe's epoch times and compile seconds, scvi's record, the ratio.
    """
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
        model, guide, counts, args.batch_size, args.seed
    )
    warmup = time_vae_epochs(step, steps_per_epoch, 1)
    scribe_times: list[float] = []

    def one_epoch() -> None:
        scribe_times.extend(time_vae_epochs(step, steps_per_epoch, 1))

    python = None if args.no_scvi else find_scvi_python(args.scvi_python)
    scvi: dict[str, Any] = {"available": False}
    if args.no_scvi:
        scvi["reason"] = "skipped (--no-scvi)"
    elif python is None:
        scvi["reason"] = "no interpreter with scvi-tools found"
    else:
        try:
            scvi = run_scvi_interleaved(python, counts_np, args, one_epoch)
        except ScviUnavailable as error:
            scvi["reason"] = str(error)
    scribe_times += time_vae_epochs(
        step, steps_per_epoch, args.epochs - len(scribe_times)
    )
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


# ------------------------------------------------------------------ output


def versions() -> dict[str, str]:
    """Installed versions of scribe and its stack."""
    out = {}
    for name in ("scribe", *VERSIONED):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_output(*command: str) -> str | None:
    """Stdout of a git command run next to this script (``None``: it failed)."""
    try:
        done = subprocess.run(
            ["git", *command],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parent,
            check=False,
        )
    except OSError:
        return None
    return done.stdout.rstrip() if done.returncode == 0 else None


def machine_info() -> dict[str, Any]:
    """Backend, CPUs, load, platform and git state of this run.

    ``scribe_src_modified`` lists the files under ``packages/scribe/src`` that
    differ from the commit (the numbers then describe the working tree).
    """
    modified = git_output("status", "--porcelain", "--", "../src")
    return {
        "backend": jax.default_backend(),
        "cpu_count": os.cpu_count(),
        "load_average_1_5_15": list(os.getloadavg()),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "git_commit": git_output("rev-parse", "HEAD"),
        "scribe_src_modified": None if modified is None else modified.splitlines(),
    }


def ms(seconds: float) -> str:
    """Seconds as milliseconds with two decimals."""
    return f"{seconds * 1e3:.2f} ms"


def format_table(ll: dict[str, Any], svi: dict[str, Any], vae: dict[str, Any]) -> str:
    """Plain-text summary of the three parts."""
    t, s = ll["times"], svi["times"]
    diff = ll["relative_difference_scribe_vs_numpyro"]
    large = ll["large_counts"]
    rows = [
        ("1. NB log-lik value+grad, scribe", ms(t["scribe"]["median_s"])),
        ("   numpyro NegativeBinomialProbs", ms(t["numpyro"]["median_s"])),
        (
            f"   speedup numpyro/scribe (goal >= {LL_SPEEDUP_GOAL:g})",
            f"{ll['speedup_numpyro_over_scribe']:.2f}x",
        ),
        (
            f"   rel. diff value / grad r / grad p (goal <= {LL_RELATIVE_GOAL:g})",
            f"{diff['value']:.1e} / {diff['grad_r']:.1e} / {diff['grad_p']:.1e}",
        ),
    ]
    for name in ("scribe", "numpyro"):
        err = ll["relative_error_vs_float64"][name]
        rows.append(
            (
                f"   {name} rel. error vs float64 (value/r/p)",
                f"{err['value']:.1e} / {err['grad_r']:.1e} / {err['grad_p']:.1e}",
            )
        )
    for name in ("scribe", "numpyro"):
        rec = large[name]
        rows.append(
            (
                f"   large counts max abs error, {name}",
                f"{rec['max_abs_error']:.2e} (k={rec['at_k']:g}, r={rec['at_r']:.3g},"
                f" p={rec['at_p']:g}); plausible {rec['max_abs_error_plausible']:.2e}",
            )
        )
    rows += [
        ("2. SVI step, scribe builder model", ms(s["scribe"]["median_s"])),
        ("   plain NumPyro + AutoNormal", ms(s["plain_numpyro"]["median_s"])),
        (
            f"   ratio scribe/plain (goal <= {SVI_RATIO_GOAL:g})",
            f"{svi['ratio_scribe_over_plain']:.3f}x",
        ),
        (
            "   plain NumPyro + AutoNormal, scribe's NB log_prob",
            ms(s["plain_scribe_nb"]["median_s"]),
        ),
        (
            "   ratio scribe/plain at the same likelihood",
            f"{svi['ratio_scribe_over_plain_scribe_nb']:.3f}x",
        ),
        (
            "   first step (compile), scribe / plain",
            f"{s['scribe']['first_call_s']:.2f} / "
            f"{s['plain_numpyro']['first_call_s']:.2f} s",
        ),
        (
            "3. VAE epoch, scribe builder VAE",
            f"{vae['scribe']['median_epoch_s']:.3f} s, min "
            f"{vae['scribe']['min_epoch_s']:.3f} s "
            f"(compile {vae['scribe']['first_step_s']:.1f} s)",
        ),
    ]
    scvi = vae["scvi"]
    if scvi["available"]:
        rows += [
            (
                "   scvi-tools SCVI(gene_likelihood='nb')",
                f"{scvi['median_epoch_s']:.3f} s, min {scvi['min_epoch_s']:.3f} s "
                f"(first epoch {scvi['helper']['first_epoch_s']:.1f} s)",
            ),
            (
                "   ratio scribe/scvi, median (min)",
                f"{vae['ratio_scribe_over_scvi']:.2f}x "
                f"({vae['ratio_scribe_over_scvi_min']:.2f}x)",
            ),
        ]
    else:
        rows.append(("   scvi-tools", f"not available ({scvi['reason']})"))
    width = max(len(label) for label, _ in rows) + 2
    return "\n".join(f"{label:<{width}}{value}" for label, value in rows)


def plot(
    ll: dict[str, Any],
    svi: dict[str, Any],
    vae: dict[str, Any],
    title: str,
    path: Path,
) -> None:
    """Four bar charts: likelihood time, large-count error, SVI step, VAE epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(16.0, 4.4), layout="constrained")
    colours = ("tab:blue", "tab:orange", "tab:green")

    def bars(ax: Any, labels: Sequence[str], values: Sequence[float]) -> None:
        ax.bar(labels, values, color=colours[: len(values)])
        for x, v in enumerate(values):
            ax.annotate(f"{v:.3g}", (x, v), ha="center", va="bottom", fontsize=8)

    t = ll["times"]
    bars(
        axes[0],
        ["scribe\nnb_log_prob", "numpyro\nNBProbs"],
        [t["scribe"]["median_s"] * 1e3, t["numpyro"]["median_s"] * 1e3],
    )
    axes[0].set_ylabel("median ms per call")
    axes[0].set_title(
        f"NB log-lik value+grad, {ll['shape'][0]}x{ll['shape'][1]}\n"
        f"numpyro/scribe {ll['speedup_numpyro_over_scribe']:.2f}x "
        f"(goal >= {LL_SPEEDUP_GOAL:g})",
        fontsize=9,
    )
    large = ll["large_counts"]
    width = 0.38
    for i, name in enumerate(("scribe", "numpyro")):
        values = [large[name]["max_abs_error"], large[name]["max_abs_error_plausible"]]
        xs = [j + (i - 0.5) * width for j in range(2)]
        axes[1].bar(xs, values, width, color=colours[i], label=name)
        for x, v in zip(xs, values, strict=True):
            axes[1].annotate(f"{v:.2g}", (x, v), ha="center", va="bottom", fontsize=8)
    axes[1].set_xticks(
        [0, 1], ["whole grid", f"log P >= {PLAUSIBLE_LOG_PROB:g}"], fontsize=9
    )
    axes[1].set_yscale("log")
    axes[1].set_ylabel("max |log P - scipy float64|")
    axes[1].legend(fontsize=8)
    axes[1].set_title(
        f"float32 log P, k <= {LARGE_K_MAX:g}, r <= {LARGE_R_RANGE[1]:g}",
        fontsize=9,
    )
    s = svi["times"]
    bars(
        axes[2],
        ["scribe\nbuilders", "NumPyro\n+AutoNormal", "NumPyro+AutoNormal\nscribe NB"],
        [
            s[name]["median_s"] * 1e3
            for name in ("scribe", "plain_numpyro", "plain_scribe_nb")
        ],
    )
    axes[2].tick_params(axis="x", labelsize=8)
    axes[2].set_ylabel("median ms per SVI step")
    axes[2].set_title(
        f"SVI step, batch {svi['batch_size']}: scribe/plain "
        f"{svi['ratio_scribe_over_plain']:.3f}x\n(goal <= {SVI_RATIO_GOAL:g}); "
        f"same NB log_prob {svi['ratio_scribe_over_plain_scribe_nb']:.3f}x",
        fontsize=9,
    )
    scvi = vae["scvi"]
    labels, values = ["scribe\nVAE"], [vae["scribe"]["median_epoch_s"]]
    if scvi["available"]:
        labels.append("scvi-tools\nSCVI nb")
        values.append(scvi["median_epoch_s"])
        subtitle = (
            f"scribe/scvi {vae['ratio_scribe_over_scvi']:.2f}x "
            f"(min epochs {vae['ratio_scribe_over_scvi_min']:.2f}x)"
        )
    else:
        subtitle = "scvi-tools not available"
    bars(axes[3], labels, values)
    axes[3].set_ylabel("median s per epoch")
    axes[3].set_title(
        f"VAE epoch ({vae['cells_per_epoch']:,} cells)\n{subtitle}", fontsize=9
    )
    fig.suptitle(title, fontsize=10)
    atomic_write(path, lambda handle: fig.savefig(handle, dpi=120, format="png"))
    plt.close(fig)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cells", type=int, default=N_CELLS)
    parser.add_argument("--genes", type=int, default=N_GENES)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--repeats", type=int, default=15, help="timed repeats")
    parser.add_argument(
        "--min-repeat-s",
        type=float,
        default=0.2,
        help="shortest duration of one timed repeat (sets the calls per repeat)",
    )
    parser.add_argument(
        "--epochs", type=int, default=6, help="timed VAE epochs (after one warm-up)"
    )
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "--scvi-python",
        type=Path,
        default=None,
        help="python of a venv with scvi-tools (default: $SCRIBE_SCVI_PYTHON, "
        f"else {DEFAULT_SCVI_PYTHON} if it exists)",
    )
    parser.add_argument(
        "--no-scvi", action="store_true", help="skip the scvi-tools comparison"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 2,000 x 500 counts, batch 256, 3 repeats, 2 epochs",
    )
    parser.add_argument(
        "--no-save", action="store_true", help="print the table, write nothing"
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=Path(__file__).resolve().parent / "results",
        help="folder for the JSON and PNG",
    )
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
    machine = machine_info()
    info = versions()
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
    print(format_table(ll, svi, vae))
    goals = ll["goals"] | svi["goals"]
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
        "goals": {
            "likelihood_speedup_min": LL_SPEEDUP_GOAL,
            "likelihood_relative_difference_max": LL_RELATIVE_GOAL,
            "svi_ratio_max": SVI_RATIO_GOAL,
            "met": goals,
        },
        "total_s": elapsed,
        "likelihood": ll,
        "svi_step": svi,
        "vae_epoch": vae,
    }
    text = json.dumps(payload, indent=2) + "\n"
    json_path = atomic_write(
        args.out_dir / f"{RESULTS_STEM}.json",
        lambda handle: handle.write(text.encode()),
    )
    title = (
        f"scribe, {args.cells:,} x {args.genes:,} NB counts; jax {info['jax']}, "
        f"numpyro {info['numpyro']}, {machine['backend']} {machine['cpu_count']} CPUs"
    )
    plot(ll, svi, vae, title, args.out_dir / f"{RESULTS_STEM}.png")
    print(f"wrote {json_path} and {RESULTS_STEM}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
