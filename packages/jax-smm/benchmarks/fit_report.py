"""Results JSON, summary and figure of ``bench_fit_rf00379.py``.

:func:`fit_payload` builds its results, :func:`print_fit_summary` prints them
and :func:`plot_fit` draws them (written by ``jax_smm.plots.save_figure``).
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from fit_tracking import THRESHOLDS, CurvePoint
from msa import ALPHABET, IDENTITY_THRESHOLD
from peers.adabmdca import PEER_REFERENCE
from rf00379 import Prepared

from jax_smm import FitHistory
from jax_smm.plots import pyplot, save_figure


def fit_payload(
    *,
    run: dict[str, Any],
    data: Prepared,
    data_path: Path,
    settings: dict[str, Any],
    ceiling: Sequence[float],
    timing: dict[str, Any],
    crossings: dict[str, dict[str, Any] | None],
    points: Sequence[CurvePoint],
    fit_seconds: float,
    stop_reason: str,
    history: FitHistory,
) -> dict[str, Any]:
    """The results JSON of the fit benchmark.

    Parameters
    ----------
    run : dict
        The run record (``harness.run_record``).
    data : Prepared
        The alignment, graph and targets.
    data_path : Path
        The FASTA file read (recorded by name and SHA-256, not by its
        machine-specific location).
    settings : dict
        The run's settings.
    ceiling : sequence of float
        Noise-ceiling Pearsons of data resampled to the chain count.
    timing, crossings : dict
        From ``fit_tracking.timing_summary`` and ``threshold_crossings``.
    points : sequence of CurvePoint
        The curve (at least one point).
    fit_seconds : float
        Wall seconds of the whole ``fit_smm`` call.
    stop_reason : str
        Why the fit stopped.
    history : FitHistory
        The fit's history (its last moment errors are recorded).
    """
    final = points[-1]
    return {
        "run": run,
        "benchmark": "fit_rf00379",
        "measurement": (
            "wall seconds since fit_smm was called (setup, compile and callback "
            "included) at which the Pearson correlation of model vs target "
            "connected correlations, estimated from one state per chain after "
            "each chunk, first reaches each threshold; compile-excluded times "
            "subtract the first chunk's excess over the median chunk"
        ),
        "data": {
            "file": data_path.name,
            "sha256": hashlib.sha256(data_path.read_bytes()).hexdigest(),
            "num_sequences": data.seqs.shape[0],
            "num_columns": data.seqs.shape[1],
            "alphabet": ALPHABET,
            "identity_threshold": IDENTITY_THRESHOLD,
            "m_eff": data.m_eff,
            "pseudocount": data.alpha,
            "preparation_seconds": {
                "read_and_reweight": data.seconds["read_and_reweight"],
                "build_graph": data.seconds["build_graph"],
                "targets": data.seconds["targets"],
            },
        },
        "settings": settings,
        "model": {
            "variables": data.graph.num_vars,
            "factors": len(data.graph.factors),
            "parameters": data.graph.plan.num_params,
            "colors": data.graph.plan.num_colors,
        },
        "snapshot_noise_ceiling": {
            "description": (
                "Pearson of the connected correlations of `chains` sequences "
                "drawn (with their weights) from the data itself vs the targets: "
                "what a perfect model can score with this estimator"
            ),
            "values": ceiling,
            "median": float(np.median(ceiling)),
        },
        "timing": timing,
        "thresholds": crossings,
        "final": {
            "pearson": final.pearson,
            "iterations": final.iterations,
            "seconds": final.seconds,
            "fit_seconds": fit_seconds,
            "stop_reason": stop_reason,
            "last_mean_moment_error": float(history.mean_error[-1]),
            "last_max_moment_error": float(history.max_error[-1]),
        },
        "curve": [asdict(p) for p in points],
        "peer_reference": PEER_REFERENCE,
    }


def print_fit_summary(
    args: argparse.Namespace,
    *,
    m_eff: float,
    alpha: float,
    timing: dict[str, Any],
    crossings: dict[str, dict[str, Any] | None],
    ceiling: Sequence[float],
    final: CurvePoint,
    stop_reason: str,
) -> None:
    """Print the end-of-run summary of the fit benchmark."""
    overhead = timing["first_chunk_overhead_seconds"]

    def fmt(value: float | None, spec: str = ".1f") -> str:
        return "n/a" if value is None else format(value, spec)

    print("\nSummary")
    print(f"  M_eff                         {m_eff:.1f}")
    print(
        f"  settings                      {args.chains} chains, {args.sweeps} sweeps, "
        f"{args.optimizer} lr {args.lr:g} {args.schedule}, pseudocount {alpha:.3g}"
    )
    print(
        f"  seconds / iteration           {fmt(timing['seconds_per_iteration'], '.4f')}"
        f" (callback {fmt(timing['callback_seconds_median'], '.3f')} s per "
        f"{args.chunk_size} iterations)"
    )
    print(f"  first-chunk overhead          {fmt(overhead)} s (setup + compile, est.)")
    for level, hit in crossings.items():
        if hit is None:
            print(f"  time to {level:<5}                 not reached")
        else:
            print(
                f"  time to {level:<5}                 {hit['seconds']:.1f} s "
                f"({fmt(hit['seconds_excluding_compile'])} s excl. compile), "
                f"{hit['iterations']} iterations"
            )
    print(
        f"  noise ceiling                 {np.median(ceiling):.4f} (data resampled "
        f"to {args.chains} states)"
    )
    print(
        f"  final pearson                 {final.pearson:.4f} after "
        f"{final.iterations} iterations, {final.seconds:.1f} s ({stop_reason})"
    )
    peer = PEER_REFERENCE["thresholds"]
    print(
        f"  peer (adabmDCA 1.0.0)         0.8 at {peer['0.8']['seconds']:g} s, 0.9 at "
        f"{peer['0.9']['seconds']:g} s / {peer['0.9']['iterations']} updates "
        "(reported, not measured here)"
    )


def plot_fit(
    path: Path,
    points: Sequence[CurvePoint],
    overhead: float | None,
    ceiling: float,
    title: str,
) -> None:
    """Plot Pearson against wall seconds, with thresholds and the peer point.

    Parameters
    ----------
    path : Path
        PNG destination (written atomically).
    points : sequence of CurvePoint
    overhead : float or None
        Estimated setup + compile seconds; when known, a second, dashed curve
        shows the compile-excluded times.
    ceiling : float
        Noise ceiling of the Pearson estimate (drawn as a dashed line).
    title : str
        Figure title.
    """
    plt = pyplot()

    seconds = np.array([p.seconds for p in points])
    values = np.array([p.pearson for p in points])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(seconds, values, "o-", ms=2.5, lw=1.2, label="jax_smm (this run)")
    if overhead is not None:
        ax.plot(
            seconds - overhead,
            values,
            "--",
            lw=0.9,
            alpha=0.7,
            label=f"jax_smm, minus est. compile/setup ({overhead:.1f} s)",
        )
    for level, color in zip(THRESHOLDS, ("tab:gray", "tab:green", "tab:red")):
        ax.axhline(level, color=color, lw=0.8, ls=":")
        ax.annotate(
            f"{level:g}",
            (1.0, level),
            xycoords=("axes fraction", "data"),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
            color=color,
        )
    ax.axhline(
        ceiling,
        color="tab:purple",
        lw=0.9,
        ls="--",
        label=f"noise ceiling: data resampled to the chain count ({ceiling:.3f})",
    )
    peer = PEER_REFERENCE["thresholds"]
    ax.plot(
        [peer["0.8"]["seconds"], peer["0.9"]["seconds"]],
        [0.8, 0.9],
        "k*",
        ms=10,
        label="adabmDCA 1.0.0, timed by the project (not in this run)",
    )
    ax.set_xlabel("wall seconds since fit_smm was called")
    ax.set_ylabel("Pearson of connected correlations")
    ax.set_ylim(min(0.0, float(values.min(initial=0.0))), 1.0)
    ax.set_xlim(left=0.0)
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    save_figure(fig, path)
