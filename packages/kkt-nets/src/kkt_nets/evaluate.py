"""Evaluate a trained checkpoint on a split: raw prediction, certificate, refinement.

``python -m kkt_nets.evaluate --checkpoint RUN/best.pt --data-dir DIR
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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kkt_nets.cli import add_flag
from kkt_nets.config import TrainConfig
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


@dataclass(frozen=True)
class Stats:
    """Mean, median and max of a metric over the instances."""

    mean: float
    median: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats:
        """The statistics of ``values``."""
        array = np.asarray(values, dtype=np.float64)
        return cls(float(array.mean()), float(np.median(array)), float(array.max()))


@dataclass(frozen=True)
class EmbeddingSpread:
    """Embedding-collapse statistic of the JEPA embedding (:func:`embedding_spread`).

    Attributes
    ----------
    dim : int
        Embedding dimension ``D``.
    reference_isotropic : float
        ``1 / sqrt(D)``, the value of an isotropic embedding.
    mean_std : float
        Per-dimension standard deviation across inputs, averaged over ``D``.
    """

    dim: int
    reference_isotropic: float
    mean_std: float


@dataclass(frozen=True)
class PredictionSummary:
    """The raw prediction on a split, in the original units of each LP.

    Attributes
    ----------
    objective_gap, max_violation, row_relative_violation : Stats
        Per-instance metrics of :func:`instance_metrics` (with the next two).
    dual_bound_gap, duality_gap : Stats
    seconds : float
        Batched inference of the whole split.
    ms_per_instance : float
    """

    objective_gap: Stats
    max_violation: Stats
    row_relative_violation: Stats
    dual_bound_gap: Stats
    duality_gap: Stats
    seconds: float
    ms_per_instance: float


@dataclass(frozen=True)
class PdhgSummary:
    """One PDHG run over a split (warm-started or cold).

    Attributes
    ----------
    statuses : dict of str to int
        Instances per status.
    optimal : int
        Instances solved to the tolerance.
    iterations, objective_gap, max_violation : Stats
        PDHG iterations, objective gap to HiGHS and largest violation.
    seconds : float
        Wall time of the batched run.
    """

    statuses: dict[str, int]
    optimal: int
    iterations: Stats
    objective_gap: Stats
    max_violation: Stats
    seconds: float


@dataclass(frozen=True)
class HighsTiming:
    """HiGHS one LP at a time (:func:`time_highs`).

    Attributes
    ----------
    solver : str
        ``simplex`` or ``pdlp``.
    tolerance : float, optional
        PDLP's tolerance (``None``: HiGHS's default).
    seconds, ms_per_instance : float
        Wall time, model passing included.
    failures : int
        LPs HiGHS did not solve.
    """

    solver: str
    tolerance: float | None
    seconds: float
    ms_per_instance: float
    failures: int


@dataclass(frozen=True)
class Ratios:
    """Warm over cold PDHG iterations, and times of the pipeline over HiGHS's.

    Attributes
    ----------
    warm_over_cold_iterations_median : float
    predict_refine_over_highs_simplex : float
    cold_pdhg_over_highs_simplex : float
    predict_refine_over_highs_pdlp : float, optional
        ``None`` when HiGHS's PDLP was not timed.
    """

    warm_over_cold_iterations_median: float
    predict_refine_over_highs_simplex: float
    cold_pdhg_over_highs_simplex: float
    predict_refine_over_highs_pdlp: float | None = None


@dataclass(frozen=True)
class EvaluationReport:
    """Everything :func:`evaluate` measured on one split.

    Attributes
    ----------
    checkpoint, data_dir, split : str
    instances : int
    model : str
        ``GNNPolicy`` or ``KKTNetMLP``.
    loss : str
    bounds_as_rows, use_jepa : bool
    jepa_mode : str, optional
    device : str
    tol : float
    check_every : int
    prediction : PredictionSummary
    refined, cold : PdhgSummary
        PDHG warm-started from the prediction, and from zero.
    highs_simplex : HighsTiming
    embedding : EmbeddingSpread
    ratios : Ratios
    highs_pdlp : HighsTiming, optional
        ``None`` when not timed.
    """

    checkpoint: str
    data_dir: str
    split: str
    instances: int
    model: str
    loss: str
    bounds_as_rows: bool
    use_jepa: bool
    jepa_mode: str | None
    device: str
    tol: float
    check_every: int
    prediction: PredictionSummary
    refined: PdhgSummary
    cold: PdhgSummary
    highs_simplex: HighsTiming
    embedding: EmbeddingSpread
    ratios: Ratios
    highs_pdlp: HighsTiming | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dicts for JSON (a timing not measured is left out)."""
        values = asdict(self)
        if self.highs_pdlp is None:
            del values["highs_pdlp"]
            del values["ratios"]["predict_refine_over_highs_pdlp"]
        values["ratios"] = values.pop("ratios")  # last, as the JSON has it
        return values


@torch.no_grad()
def embedding_spread(
    model: torch.nn.Module, lps: Sequence[LP], config: TrainConfig
) -> EmbeddingSpread:
    """Embedding-collapse statistic of the JEPA embedding on ``lps``.

    The standard deviation across inputs of each dimension of the
    L2-normalized JEPA embedding (``jepa_embed`` of the MLP per instance;
    ``jepa_embed_nodes`` of the GNN per variable node), averaged over the
    ``D`` dimensions: ``1 / sqrt(D)`` for an isotropic embedding, 0 for a
    collapsed one.

    Parameters
    ----------
    model : torch.nn.Module
    lps : sequence of LP
    config : TrainConfig
        The model's settings (form, model path and MLP size).

    Returns
    -------
    EmbeddingSpread
    """
    lps = [bounds_to_rows(lp)[0] for lp in lps] if config.bounds_as_rows else lps
    if config.use_bipartite_graphs:
        dataset = GraphDataset(lps)
        graph = pad_collate_graphs([dataset[i] for i in range(len(lps))]).batch_graph
        _, z = model.jepa_embed_nodes(
            graph.constraint_features,
            graph.edge_index,
            graph.edge_attr,
            graph.variable_features,
        )
    else:
        dataset = LPDataset(lps, max_m=config.max_m, max_n=config.max_n)
        z = model.jepa_embed(pad_collate([dataset[i] for i in range(len(dataset))])[0])
    return EmbeddingSpread(
        dim=z.shape[1],
        reference_isotropic=1.0 / math.sqrt(z.shape[1]),
        mean_std=float(z.std(dim=0).mean()),
    )


def _pdhg_summary(
    lps: Sequence[LP], labels: Sequence[Solution], results: list, seconds: float
) -> PdhgSummary:
    """Statuses, iterations, objective gaps to HiGHS and time of a PDHG run."""
    gaps = [
        abs(lp.objective(r.x) - label.z / lp.obj_scale)
        / max(1.0, abs(label.z / lp.obj_scale))
        for lp, label, r in zip(lps, labels, results)
    ]
    statuses: dict[str, int] = {}
    for r in results:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    return PdhgSummary(
        statuses=statuses,
        optimal=statuses.get("optimal", 0),
        iterations=Stats.of([r.iterations for r in results]),
        objective_gap=Stats.of(gaps),
        max_violation=Stats.of([lp.max_violation(r.x) for lp, r in zip(lps, results)]),
        seconds=seconds,
    )


def time_highs(lps: Sequence[LP], solver: str, tol: float | None) -> HighsTiming:
    """HiGHS one LP at a time: wall seconds (model passing included), failures."""
    failures = 0
    started = time.perf_counter()
    for lp in lps:
        try:
            solve(lp, solver=solver, tolerance=tol)
        except LPError:
            failures += 1
    seconds = time.perf_counter() - started
    return HighsTiming(
        solver=solver,
        tolerance=tol,
        seconds=seconds,
        ms_per_instance=1e3 * seconds / len(lps),
        failures=failures,
    )


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
) -> EvaluationReport:
    """Metrics of ``checkpoint`` on ``data_dir/split`` and the comparisons.

    Returns
    -------
    EvaluationReport
        The raw prediction, the warm-started and cold PDHG runs, HiGHS's
        timings (PDLP's only with ``highs_pdlp``), their ratios and the
        embedding spread; :meth:`EvaluationReport.to_dict` for JSON.
    """
    if split not in SPLITS:
        raise ValueError(f"--split must be one of {SPLITS}, got {split!r}")
    model, config = load_trained(checkpoint, device)
    instances = load_split(data_dir, split)
    if not instances:
        raise ValueError(f"{data_dir}/{split} has no instances")
    lps = [lp for lp, _ in instances]
    labels = [label for _, label in instances]
    xs, lams, predict_seconds = predict_all(model, lps, config, batch_size, device)
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
    simplex = time_highs(lps, "simplex", None)
    pdlp = time_highs(lps, "pdlp", tol) if highs_pdlp else None
    pipeline = predict_seconds + warm_seconds
    return EvaluationReport(
        checkpoint=str(checkpoint),
        data_dir=str(data_dir),
        split=split,
        instances=len(lps),
        model="GNNPolicy" if config.use_bipartite_graphs else "KKTNetMLP",
        loss=config.loss,
        bounds_as_rows=config.bounds_as_rows,
        use_jepa=config.use_jepa,
        jepa_mode=config.jepa_mode if config.use_jepa else None,
        device=device,
        tol=tol,
        check_every=check_every,
        prediction=PredictionSummary(
            **{key: Stats.of([r[key] for r in rows]) for key in rows[0]},
            seconds=predict_seconds,
            ms_per_instance=1e3 * predict_seconds / len(lps),
        ),
        refined=_pdhg_summary(lps, labels, warm, warm_seconds),
        cold=_pdhg_summary(lps, labels, cold, cold_seconds),
        highs_simplex=simplex,
        embedding=embedding_spread(model, lps, config),
        ratios=Ratios(
            warm_over_cold_iterations_median=float(
                np.median(
                    [w.iterations / max(1, c.iterations) for w, c in zip(warm, cold)]
                )
            ),
            predict_refine_over_highs_simplex=pipeline / simplex.seconds,
            cold_pdhg_over_highs_simplex=cold_seconds / simplex.seconds,
            predict_refine_over_highs_pdlp=(
                None if pdlp is None else pipeline / pdlp.seconds
            ),
        ),
        highs_pdlp=pdlp,
    )


def format_summary(report: EvaluationReport) -> str:
    """A few lines for the terminal."""
    p, r, c = report.prediction, report.refined, report.cold
    ratios = report.ratios
    n = report.instances
    lines = [
        f"{report.model} on {n} {report.split} instances "
        f"({report.device}, tol {report.tol:g})",
        f"  prediction: objective gap median {p.objective_gap.median:.3%} "
        f"(mean {p.objective_gap.mean:.3%}), max violation median "
        f"{p.max_violation.median:.3g}, dual-bound gap median "
        f"{p.dual_bound_gap.median:.3%}; {p.ms_per_instance:.3f} ms/LP",
        f"  refined (warm PDHG): {r.optimal}/{n} optimal, iterations median "
        f"{r.iterations.median:.0f} vs cold {c.iterations.median:.0f} "
        f"(warm/cold {ratios.warm_over_cold_iterations_median:.2f}); gap to "
        f"HiGHS max {r.objective_gap.max:.2e}",
        f"  time: predict + refine {p.seconds + r.seconds:.2f} s, cold PDHG "
        f"{c.seconds:.2f} s, HiGHS simplex {report.highs_simplex.seconds:.2f}"
        f" s (ratio {ratios.predict_refine_over_highs_simplex:.2f})",
    ]
    if report.highs_pdlp is not None:
        lines[-1] += (
            f", HiGHS PDLP {report.highs_pdlp.seconds:.2f} s (ratio "
            f"{ratios.predict_refine_over_highs_pdlp:.2f})"
        )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``kkt-evaluate``."""
    parser = argparse.ArgumentParser(
        prog="kkt-evaluate",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_flag(parser, "checkpoint", type=Path, required=True)
    add_flag(parser, "data_dir", type=Path, required=True)
    add_flag(parser, "split", default="test", choices=SPLITS)
    add_flag(parser, "batch_size", type=int, default=64)
    add_flag(parser, "device", default="cpu", help="cpu, or a CUDA index")
    add_flag(parser, "tol", type=float, default=1e-4, help="PDHG tolerance")
    add_flag(parser, "max_iter", type=int, default=100_000)
    add_flag(
        parser,
        "check_every",
        type=int,
        default=64,
        help="PDHG iterations between checks",
    )
    add_flag(
        parser, "no_highs_pdlp", action="store_true", help="skip HiGHS's PDLP timing"
    )
    add_flag(parser, "out", type=Path, default=None, help="JSON results")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point ``kkt-evaluate``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.out is not None:
            check_output_file(args.out, "--out")
        if args.batch_size < 1:
            raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
        report = evaluate(
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
    print(format_summary(report))
    if args.out is not None:
        text = json.dumps(report.to_dict(), indent=2) + "\n"
        atomic_write(args.out, lambda tmp: tmp.write_text(text))


if __name__ == "__main__":
    main()
