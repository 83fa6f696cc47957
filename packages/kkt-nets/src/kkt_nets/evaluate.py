"""Evaluate a trained checkpoint on a test split against HiGHS.

``python -m kkt_nets.evaluate --checkpoint RUN/best.pt --data_dir DIR
[--split test]`` (console script ``kkt-evaluate``). Per instance, in the
original units of the LP (before per-instance scaling):

* relative objective gap ``|c^T x_hat - z*| / max(1, |z*|)``;
* maximum constraint violation ``max_i max(0, (A x_hat - b)_i)``;
* duality gap ``|c^T x_hat + b^T lambda_hat| / max(1, |z*|)``;

and the time per instance of batched inference against HiGHS's own solve time
of the same LP, measured in the same run. Writes ``--out`` (JSON) when given.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from kkt_nets.data.datasets import (
    GraphDataset,
    LPDataset,
    pad_collate,
    pad_collate_graphs,
)
from kkt_nets.data.generate_instances import load_split
from kkt_nets.data.lp import LP
from kkt_nets.data.solve import Solution, solve
from kkt_nets.io import atomic_write
from kkt_nets.train import build_model, load_checkpoint, predict


def load_trained(path: Path) -> tuple[torch.nn.Module, argparse.Namespace]:
    """The model of a checkpoint (in eval mode) and its training arguments."""
    checkpoint = load_checkpoint(path)
    args = argparse.Namespace(**checkpoint["args"])
    model = build_model(args, args.max_m, args.max_n)
    model.load_state_dict(checkpoint["model"])
    return model.eval(), args


@torch.no_grad()
def predict_all(
    model: torch.nn.Module,
    lps: Sequence[LP],
    args: argparse.Namespace,
    batch_size: int,
) -> tuple[list[np.ndarray], list[np.ndarray], float]:
    """Primal and dual predictions per instance, and the inference seconds.

    The time covers collation and the forward passes of the whole split.
    """
    if args.use_bipartite_graphs:
        dataset, collate = GraphDataset(lps), pad_collate_graphs
    else:
        dataset = LPDataset(lps, max_m=args.max_m, max_n=args.max_n)
        collate = pad_collate
    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=collate)
    xs: list[np.ndarray] = []
    lams: list[np.ndarray] = []
    outputs = []
    started = time.perf_counter()
    for batch in loader:
        outputs.append((predict(model, batch), batch[3].shape[1]))  # N of c
    seconds = time.perf_counter() - started
    index = 0
    for y_pred, n_pad in outputs:
        for row in y_pred.numpy():
            lp = lps[index]
            xs.append(row[: lp.n].astype(np.float64))
            lams.append(row[n_pad : n_pad + lp.m].astype(np.float64))
            index += 1
    return xs, lams, seconds


def instance_metrics(
    lp: LP, label: Solution, x: np.ndarray, lam: np.ndarray
) -> dict[str, float]:
    """Gap, violation and duality gap of one prediction, in original units."""
    z_star = label.z / lp.obj_scale
    scale = max(1.0, abs(z_star))
    b_original = lp.b / lp.row_scale
    lam_original = lp.unscale_dual(lam)
    return {
        "objective_gap": abs(lp.objective(x) - z_star) / scale,
        "max_violation": lp.max_violation(x),
        "duality_gap": abs(lp.objective(x) + float(b_original @ lam_original)) / scale,
    }


def evaluate(
    checkpoint: Path, data_dir: Path, split: str = "test", batch_size: int = 64
) -> dict[str, Any]:
    """Metrics of ``checkpoint`` on ``data_dir/split`` and the HiGHS comparison.

    Returns
    -------
    dict
        Per-metric mean / median / max, ``inference_ms_per_instance``,
        ``highs_ms_per_instance`` and ``speedup_vs_highs``.
    """
    model, args = load_trained(checkpoint)
    instances = load_split(data_dir, split)
    if not instances:
        raise ValueError(f"{data_dir}/{split} has no instances")
    lps = [lp for lp, _ in instances]
    xs, lams, seconds = predict_all(model, lps, args, batch_size)
    rows = [
        instance_metrics(lp, label, x, lam)
        for (lp, label), x, lam in zip(instances, xs, lams, strict=True)
    ]
    highs_seconds = [solve(lp).solve_seconds for lp in lps]
    summary: dict[str, Any] = {
        "checkpoint": str(checkpoint),
        "split": split,
        "instances": len(lps),
        "model": "GNNPolicy" if args.use_bipartite_graphs else "KKTNetMLP",
        "use_jepa": bool(args.use_jepa),
        "jepa_mode": args.jepa_mode if args.use_jepa else None,
    }
    for key in rows[0]:
        values = np.array([r[key] for r in rows])
        summary[key] = {
            "mean": float(values.mean()),
            "median": float(np.median(values)),
            "max": float(values.max()),
        }
    summary["inference_ms_per_instance"] = 1e3 * seconds / len(lps)
    summary["highs_ms_per_instance"] = 1e3 * float(np.mean(highs_seconds))
    summary["speedup_vs_highs"] = (
        summary["highs_ms_per_instance"] / summary["inference_ms_per_instance"]
    )
    return summary


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point ``kkt-evaluate``."""
    parser = argparse.ArgumentParser(prog="kkt-evaluate", description=__doc__)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--data_dir", type=Path, required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--out", type=Path, default=None, help="JSON results")
    args = parser.parse_args(argv)
    try:
        summary = evaluate(args.checkpoint, args.data_dir, args.split, args.batch_size)
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
    print(
        f"{summary['model']} on {summary['instances']} {args.split} instances: "
        f"objective gap mean {summary['objective_gap']['mean']:.3%} "
        f"(median {summary['objective_gap']['median']:.3%}), max violation median "
        f"{summary['max_violation']['median']:.3g}, duality gap mean "
        f"{summary['duality_gap']['mean']:.3g}; inference "
        f"{summary['inference_ms_per_instance']:.3f} ms/instance vs HiGHS "
        f"{summary['highs_ms_per_instance']:.3f} ms "
        f"({summary['speedup_vs_highs']:.1f}x)"
    )
    if args.out is not None:
        text = json.dumps(summary, indent=2) + "\n"
        atomic_write(args.out, lambda handle: handle.write(text.encode()))


if __name__ == "__main__":
    main()
