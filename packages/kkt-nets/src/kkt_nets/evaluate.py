"""Evaluate a trained checkpoint on a split: raw prediction, certificate, refinement.

``python -m kkt_nets.evaluate --checkpoint RUN/best.pt --data_dir DIR
[--split test] [--device cpu] [--tol 1e-4]`` (console script
``kkt-evaluate``). Per instance, in the original units of the LP (before
per-instance scaling), with ``z*`` HiGHS's optimum:

* the raw prediction: relative objective gap ``|c^T x_hat - z*| / max(1,
  |z*|)``, maximum violation of a row or bound, and the **dual-bound gap**
  ``(z* - g(lambda_hat)) / max(1, |z*|)`` of its Lagrangian certificate
  (``>= 0`` always; bound duals completed in closed form);
* the refined solution: PDHG warm-started from the prediction
  (:func:`~kkt_nets.pdhg.pdhg_solve`) to the relative tolerance ``--tol``, its
  objective gap to HiGHS, status and iterations, against cold-start PDHG on
  the same LPs;
* wall times in the same run: batched prediction + warm refinement of the
  whole split, cold PDHG, and HiGHS one LP at a time with dual simplex and
  with its own PDLP at the same tolerance, with their ratios.

Writes ``--out`` (JSON) when given (its folder is checked before the work).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kkt_nets.data.datasets import (
    GraphDataset,
    LPDataset,
    pad_collate,
    pad_collate_graphs,
)
from kkt_nets.data.generate_instances import SPLITS, load_split
from kkt_nets.data.lp import LP, bounds_to_rows
from kkt_nets.data.solve import LPError, Solution, solve
from kkt_nets.inference import load_trained, predict_all
from kkt_nets.io import atomic_write, check_output_file
from kkt_nets.pdhg import pdhg_solve
from kkt_nets.train import resolve_device


def instance_metrics(
    lp: LP, label: Solution, x: np.ndarray, lam: np.ndarray
) -> dict[str, float]:
    """Gap, violation, dual-bound gap and duality gap of one prediction.

    Parameters
    ----------
    lp : LP
        The scaled instance (bounds on the columns).
    label : Solution
        HiGHS's solution of ``lp``.
    x, lam : ndarray
        Predicted primal and row duals (scaled units).

    Returns
    -------
    dict
        ``objective_gap``, ``max_violation``, ``dual_bound_gap`` and
        ``duality_gap`` (``|c^T x - g(lambda)| / max(1, |z*|)``), in original
        units, and ``row_relative_violation``: the largest violation of a row
        divided by the row's largest coefficient or right-hand side (the
        scaled LP's units, comparable across rows and families).
    """
    z_star = label.z / lp.obj_scale
    scale = max(1.0, abs(z_star))
    bound = lp.dual_bound(lam)
    return {
        "objective_gap": abs(lp.objective(x) - z_star) / scale,
        "max_violation": lp.max_violation(x),
        "row_relative_violation": float(np.max(lp.A @ x - lp.b, initial=0.0)),
        "dual_bound_gap": (z_star - bound) / scale,
        "duality_gap": abs(lp.objective(x) - bound) / scale,
    }


@torch.no_grad()
def embedding_spread(
    model: torch.nn.Module, lps: Sequence[LP], args: argparse.Namespace
) -> dict[str, Any]:
    """Embedding-collapse statistic of the JEPA embedding on ``lps``.

    The standard deviation across inputs of each dimension of the
    L2-normalized JEPA embedding (``jepa_embed`` of the MLP per instance;
    ``jepa_embed_nodes`` of the GNN per variable node), averaged over the
    ``D`` dimensions: ``1 / sqrt(D)`` for an isotropic embedding, 0 for a
    collapsed one.

    Returns
    -------
    dict
        ``dim``, ``reference_isotropic`` and ``mean_std``.
    """
    lps = [bounds_to_rows(lp)[0] for lp in lps] if args.bounds_as_rows else lps
    if args.use_bipartite_graphs:
        dataset = GraphDataset(lps)
        graph = pad_collate_graphs([dataset[i] for i in range(len(lps))]).batch_graph
        _, z = model.jepa_embed_nodes(
            graph.constraint_features,
            graph.edge_index,
            graph.edge_attr,
            graph.variable_features,
        )
    else:
        dataset = LPDataset(lps, max_m=args.max_m, max_n=args.max_n)
        z = model.jepa_embed(pad_collate([dataset[i] for i in range(len(dataset))])[0])
    return {
        "dim": z.shape[1],
        "reference_isotropic": 1.0 / math.sqrt(z.shape[1]),
        "mean_std": float(z.std(dim=0).mean()),
    }


def _stats(values: Sequence[float]) -> dict[str, float]:
    """Mean, median and max of ``values``."""
    array = np.asarray(values, dtype=np.float64)
    return {
        "mean": float(array.mean()),
        "median": float(np.median(array)),
        "max": float(array.max()),
    }


def _pdhg_summary(
    lps: Sequence[LP], labels: Sequence[Solution], results: list, seconds: float
) -> dict[str, Any]:
    """Statuses, iterations, objective gaps to HiGHS and time of a PDHG run."""
    gaps = [
        abs(lp.objective(r.x) - label.z / lp.obj_scale)
        / max(1.0, abs(label.z / lp.obj_scale))
        for lp, label, r in zip(lps, labels, results)
    ]
    statuses: dict[str, int] = {}
    for r in results:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    return {
        "statuses": statuses,
        "optimal": statuses.get("optimal", 0),
        "iterations": _stats([r.iterations for r in results]),
        "objective_gap": _stats(gaps),
        "max_violation": _stats([lp.max_violation(r.x) for lp, r in zip(lps, results)]),
        "seconds": seconds,
    }


def time_highs(lps: Sequence[LP], solver: str, tol: float | None) -> dict[str, Any]:
    """HiGHS one LP at a time: wall seconds (model passing included), failures."""
    failures = 0
    started = time.perf_counter()
    for lp in lps:
        try:
            solve(lp, solver=solver, tolerance=tol)
        except LPError:
            failures += 1
    seconds = time.perf_counter() - started
    return {
        "solver": solver,
        "tolerance": tol,
        "seconds": seconds,
        "ms_per_instance": 1e3 * seconds / len(lps),
        "failures": failures,
    }


def evaluate(
    checkpoint: Path,
    data_dir: Path,
    split: str = "test",
    batch_size: int = 64,
    device: str = "cpu",
    tol: float = 1e-4,
    max_iter: int = 100_000,
    highs_pdlp: bool = True,
    check_every: int = 64,
) -> dict[str, Any]:
    """Metrics of ``checkpoint`` on ``data_dir/split`` and the comparisons.

    Returns
    -------
    dict
        ``prediction`` (per-metric mean / median / max and ms per instance),
        ``refined`` and ``cold`` (PDHG statuses, iterations, gaps, seconds),
        ``highs_simplex`` and ``highs_pdlp`` (seconds), ``ratios`` (median
        warm / cold iterations, predict + refine time over each HiGHS time)
        and ``embedding`` (:func:`embedding_spread`).
    """
    if split not in SPLITS:
        raise ValueError(f"--split must be one of {SPLITS}, got {split!r}")
    model, args = load_trained(checkpoint, device)
    instances = load_split(data_dir, split)
    if not instances:
        raise ValueError(f"{data_dir}/{split} has no instances")
    lps = [lp for lp, _ in instances]
    labels = [label for _, label in instances]
    xs, lams, predict_seconds = predict_all(model, lps, args, batch_size, device)
    rows = [
        instance_metrics(lp, label, x, lam)
        for lp, label, x, lam in zip(lps, labels, xs, lams, strict=True)
    ]
    settings = {
        "tol": tol,
        "max_iter": max_iter,
        "device": device,
        "check_every": check_every,
    }
    started = time.perf_counter()
    warm = pdhg_solve(lps, xs, lams, **settings)
    warm_seconds = time.perf_counter() - started
    started = time.perf_counter()
    cold = pdhg_solve(lps, **settings)
    cold_seconds = time.perf_counter() - started
    summary: dict[str, Any] = {
        "checkpoint": str(checkpoint),
        "data_dir": str(data_dir),
        "split": split,
        "instances": len(lps),
        "model": "GNNPolicy" if args.use_bipartite_graphs else "KKTNetMLP",
        "loss": args.loss,
        "bounds_as_rows": bool(args.bounds_as_rows),
        "use_jepa": bool(args.use_jepa),
        "jepa_mode": args.jepa_mode if args.use_jepa else None,
        "device": device,
        "tol": tol,
        "check_every": check_every,
        "prediction": {
            **{key: _stats([r[key] for r in rows]) for key in rows[0]},
            "seconds": predict_seconds,
            "ms_per_instance": 1e3 * predict_seconds / len(lps),
        },
        "refined": _pdhg_summary(lps, labels, warm, warm_seconds),
        "cold": _pdhg_summary(lps, labels, cold, cold_seconds),
        "highs_simplex": time_highs(lps, "simplex", None),
        "embedding": embedding_spread(model, lps, args),
    }
    pipeline = predict_seconds + warm_seconds
    ratios = {
        "warm_over_cold_iterations_median": float(
            np.median([w.iterations / max(1, c.iterations) for w, c in zip(warm, cold)])
        ),
        "predict_refine_over_highs_simplex": pipeline
        / summary["highs_simplex"]["seconds"],
        "cold_pdhg_over_highs_simplex": cold_seconds
        / summary["highs_simplex"]["seconds"],
    }
    if highs_pdlp:
        summary["highs_pdlp"] = time_highs(lps, "pdlp", tol)
        ratios["predict_refine_over_highs_pdlp"] = (
            pipeline / summary["highs_pdlp"]["seconds"]
        )
    summary["ratios"] = ratios
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    """A few lines for the terminal."""
    p, r, c = summary["prediction"], summary["refined"], summary["cold"]
    ratios = summary["ratios"]
    n = summary["instances"]
    lines = [
        f"{summary['model']} on {n} {summary['split']} instances "
        f"({summary['device']}, tol {summary['tol']:g})",
        f"  prediction: objective gap median {p['objective_gap']['median']:.3%} "
        f"(mean {p['objective_gap']['mean']:.3%}), max violation median "
        f"{p['max_violation']['median']:.3g}, dual-bound gap median "
        f"{p['dual_bound_gap']['median']:.3%}; {p['ms_per_instance']:.3f} ms/LP",
        f"  refined (warm PDHG): {r['optimal']}/{n} optimal, iterations median "
        f"{r['iterations']['median']:.0f} vs cold {c['iterations']['median']:.0f} "
        f"(warm/cold {ratios['warm_over_cold_iterations_median']:.2f}); gap to "
        f"HiGHS max {r['objective_gap']['max']:.2e}",
        f"  time: predict + refine {p['seconds'] + r['seconds']:.2f} s, cold PDHG "
        f"{c['seconds']:.2f} s, HiGHS simplex {summary['highs_simplex']['seconds']:.2f}"
        f" s (ratio {ratios['predict_refine_over_highs_simplex']:.2f})",
    ]
    if "highs_pdlp" in summary:
        lines[-1] += (
            f", HiGHS PDLP {summary['highs_pdlp']['seconds']:.2f} s (ratio "
            f"{ratios['predict_refine_over_highs_pdlp']:.2f})"
        )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``kkt-evaluate``."""
    parser = argparse.ArgumentParser(
        prog="kkt-evaluate",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--data_dir", type=Path, required=True)
    parser.add_argument("--split", default="test", choices=SPLITS)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--device", default="cpu", help="cpu, or a CUDA index")
    parser.add_argument("--tol", type=float, default=1e-4, help="PDHG tolerance")
    parser.add_argument("--max_iter", type=int, default=100_000)
    parser.add_argument(
        "--check_every", type=int, default=64, help="PDHG iterations between checks"
    )
    parser.add_argument(
        "--no_highs_pdlp", action="store_true", help="skip HiGHS's PDLP timing"
    )
    parser.add_argument("--out", type=Path, default=None, help="JSON results")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point ``kkt-evaluate``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.out is not None:
            check_output_file(args.out, "--out")
        if args.batch_size < 1:
            raise ValueError(f"--batch_size must be >= 1, got {args.batch_size}")
        summary = evaluate(
            args.checkpoint,
            args.data_dir,
            args.split,
            args.batch_size,
            resolve_device(args.device, "--device"),
            args.tol,
            args.max_iter,
            not args.no_highs_pdlp,
            args.check_every,
        )
    except (ValueError, FileNotFoundError, OSError) as error:
        parser.error(str(error))
    print(format_summary(summary))
    if args.out is not None:
        text = json.dumps(summary, indent=2) + "\n"
        atomic_write(args.out, lambda handle: handle.write(text.encode()))


if __name__ == "__main__":
    main()
