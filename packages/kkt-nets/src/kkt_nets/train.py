"""Train a KKT network (bipartite GNN or MLP) on an LP dataset, optionally with JEPA.

``python -m kkt_nets.train --data_dir DIR [--model {gnn,mlp}] [--use_jepa
--jepa_mode {ema,simsiam}] ...`` (console script ``kkt-train``).

Two forms of the problem:

* default: bounds on the columns, enforced by the networks' output layer,
  trained on :func:`~kkt_nets.models.losses.certificate_loss` (relative
  duality gap of the prediction's Lagrangian certificate plus normalized
  primal and dual residuals; ``--penalty`` weighs the residuals, optionally
  raised by ``--penalty_schedule adaptive``; ``--supervised_weight`` adds a
  term on HiGHS's labels);
* ``--bounds_as_rows``: the spec's form (bounds as rows, ``x`` free) with the
  spec's :func:`~kkt_nets.models.losses.kkt_loss` and its default weights.

``--loss`` picks either loss for either form. JEPA: ``jepa_weight`` times the
JEPA loss in embedding space when ``--use_jepa``; JEPA alone while ``epoch <
--jepa_pretrain_epochs``. In ``ema`` mode a frozen copy of the model (the
target) follows the online model by an exponential moving average after every
optimizer step; ``simsiam`` uses the online model with a stop-gradient and
creates no target.

Every run writes ``OUT/metrics.jsonl`` (one JSON object per logged step or
epoch) and, with ``--wandb_mode online|offline``, logs the same to wandb.
Checkpoints ``OUT/last.pt`` (every epoch) and ``OUT/best.pt`` (best
validation loss at the initial weights) hold the model, optimizer, epoch,
step, penalty, arguments and, in ``ema`` mode, ``target_model``; ``--resume
OUT/last.pt`` restores all of them (and refuses a checkpoint whose model or
data differ, naming the flag). Each epoch's shuffle and JEPA masks are seeded
by ``(seed, epoch)``, so a resumed run continues exactly as an uninterrupted
one would. An existing run folder is only reused with ``--resume`` or
``--overwrite``.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import time
import warnings
from collections.abc import Sequence
from copy import deepcopy
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from kkt_nets.data.datasets import (
    GraphBatch,
    GraphDataset,
    LPDataset,
    pad_collate,
    pad_collate_graphs,
)
from kkt_nets.data.generate_instances import load_split
from kkt_nets.data.lp import LP, bounds_to_rows
from kkt_nets.io import atomic_write, remove_stale_temporaries
from kkt_nets.models.jepa_utils import (
    ema_update,
    jepa_loss_gnn,
    jepa_loss_mlp,
    make_gnn_views,
    make_mlp_views,
)
from kkt_nets.models.losses import certificate_loss, kkt_loss
from kkt_nets.models.models import GNNPolicy, KKTNetMLP, nodes_to_padded
from kkt_nets.resources import check_memory, model_memory_estimate

CHECKPOINT_FORMAT = 2
"""Checkpoint layout version (2: bounds on the columns, input normalization)."""
ARCHITECTURE_FLAGS = (
    "use_bipartite_graphs",
    "hidden",
    "num_layers",
    "embedding_size",
    "gnn_layers",
    "bounds_as_rows",
)
"""Flags a resumed run must share with its checkpoint (they shape the model)."""
RESUMABLE_FLAGS = ("lr", "weight_decay")
"""Flags a resumed run may change; the optimizer takes the new values."""


class MetricsLogger:
    """Logs to ``metrics.jsonl`` always and to wandb when it is enabled.

    Parameters
    ----------
    out_dir : Path
        Run folder (``metrics.jsonl`` is appended to).
    wandb_mode : {"online", "offline", "disabled"}
    config : dict
        Run arguments, for wandb.
    project : str
        wandb project.
    """

    def __init__(
        self, out_dir: Path, wandb_mode: str, config: dict, project: str
    ) -> None:
        self.path = out_dir / "metrics.jsonl"
        self.run = None
        if wandb_mode != "disabled":
            try:
                import wandb
            except ImportError as error:
                raise RuntimeError(
                    f"--wandb_mode {wandb_mode} needs wandb: pip install "
                    "'kkt-nets[wandb]'"
                ) from error
            self.run = wandb.init(
                project=project, config=config, mode=wandb_mode, dir=str(out_dir)
            )

    def log(self, values: dict[str, float], step: int) -> None:
        """Record ``values`` at ``step`` (a JSON line; wandb if enabled)."""
        record = {"step": step, **{k: float(v) for k, v in values.items()}}
        with open(self.path, "a") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.run is not None:
            self.run.log(values, step=step)

    def close(self) -> None:
        """Finish the wandb run, if any."""
        if self.run is not None:
            self.run.finish()


def read_curve(metrics: Path) -> dict[str, list[float]]:
    """Per-epoch curves from a run's ``metrics.jsonl`` (see :class:`MetricsLogger`).

    Parameters
    ----------
    metrics : Path

    Returns
    -------
    dict
        ``epoch``, ``seconds`` (cumulative training time), ``train_loss``,
        ``val_loss`` and ``penalty``, one entry per epoch.

    Raises
    ------
    ValueError
        If a line is not JSON (the message names the file and line).
    """
    curve: dict[str, list[float]] = {
        key: [] for key in ("epoch", "seconds", "train_loss", "val_loss", "penalty")
    }
    elapsed = 0.0
    for number, line in enumerate(metrics.read_text().splitlines(), start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{metrics}:{number} is not JSON: {error}") from error
        if "val/loss" not in record:
            continue
        elapsed += record["epoch_seconds"]
        curve["epoch"].append(int(record["epoch"]))
        curve["seconds"].append(elapsed)
        curve["train_loss"].append(record["train/epoch_loss"])
        curve["val_loss"].append(record["val/loss"])
        curve["penalty"].append(record.get("penalty", math.nan))
    return curve


class TrainingState:
    """Step and epoch counters shared by the loop, logging and checkpoints.

    Parameters
    ----------
    log_every : int
        Log training metrics every ``log_every`` optimizer steps.
    logger : MetricsLogger, optional
    penalty : float
        Current weight of the residual terms of the certificate loss.
    """

    def __init__(
        self, log_every: int, logger: MetricsLogger | None = None, penalty: float = 1.0
    ) -> None:
        if log_every < 1:
            raise ValueError(f"log_every must be >= 1, got {log_every}")
        self.log_every = log_every
        self.logger = logger
        self.step = 0
        self.epoch = 0
        self.penalty = penalty

    def get_step(self) -> int:
        """Optimizer steps taken so far."""
        return self.step

    def get_epoch(self) -> int:
        """The current epoch (0-based)."""
        return self.epoch

    def log(self, values: dict[str, float]) -> None:
        """Log ``values`` at the current step (no-op without a logger)."""
        if self.logger is not None:
            self.logger.log(values, self.step)


def predict(model: torch.nn.Module, batch: Sequence[Any]) -> torch.Tensor:
    """``y_pred [B, N + M]`` of a collated batch, for either model path.

    The bounds travel with the batch (``batch.lb``, ``batch.ub``; absent: free).
    """
    if isinstance(batch, GraphBatch):
        graph = batch.batch_graph
        x_nodes, lam_nodes = model(
            graph.constraint_features,
            graph.edge_index,
            graph.edge_attr,
            graph.variable_features,
            lb=graph.lb,
            ub=graph.ub,
        )
        return nodes_to_padded(x_nodes, lam_nodes, batch.m_sizes, batch.n_sizes)
    return model(batch[0], getattr(batch, "lb", None), getattr(batch, "ub", None))


def to_device(batch: Sequence[Any], device: str) -> Sequence[Any]:
    """Move every tensor (and PyG batch) of a collated batch to ``device``."""
    if hasattr(batch, "to"):
        return batch.to(device)
    return [item.to(device) if hasattr(item, "to") else item for item in batch]


def jepa_loss(
    model: torch.nn.Module,
    target_model: torch.nn.Module | None,
    batch: Sequence[Any],
    args: argparse.Namespace,
) -> torch.Tensor:
    """The JEPA loss of a batch: masked context view vs target view."""
    target_ref = target_model if args.jepa_mode == "ema" else model
    if isinstance(batch, GraphBatch):
        ctx, tgt, m_cons, m_vars = make_gnn_views(
            batch.batch_graph, args.jepa_mask_ratio_nodes
        )
        return jepa_loss_gnn(
            model, target_ref, ctx, tgt, m_cons, m_vars, args.jepa_mode
        )
    model_input, A, b, c, _mask_m, _mask_n = batch
    x_ctx, x_tgt = make_mlp_views(model_input, A, b, c, args.jepa_mask_ratio_entries)
    return jepa_loss_mlp(model, target_ref, x_ctx, x_tgt, args.jepa_mode)


def task_loss(
    y_pred: torch.Tensor,
    batch: Sequence[Any],
    args: argparse.Namespace,
    weights: dict[str, float],
    penalty: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The label-free task loss of ``--loss`` (KKT or certificate) of a batch.

    Parameters
    ----------
    y_pred : Tensor
        ``[B, N + M]`` predictions.
    batch : LPBatch or GraphBatch
    args : argparse.Namespace
        Reads ``loss``, ``bounds_as_rows``, ``gap_weight``, ``supervised_weight``.
    weights : dict
        The spec's four :func:`kkt_loss` weights (``primal_weight``, ...).
    penalty : float
        Weight of the residual terms of the certificate loss.

    Returns
    -------
    loss : Tensor
    terms : dict of str to Tensor
    """
    A, b, c, mask_m, mask_n = batch[1:6]
    bounds = {} if args.bounds_as_rows else {"lb": batch.lb, "ub": batch.ub}
    if args.loss == "kkt":
        return kkt_loss(y_pred, A, b, c, mask_m, mask_n, **weights, **bounds)
    return certificate_loss(
        y_pred,
        A,
        b,
        c,
        mask_m,
        mask_n,
        **bounds,
        gap_weight=args.gap_weight,
        primal_weight=penalty,
        dual_weight=penalty,
        supervised_weight=args.supervised_weight,
        x_star=batch.x_star,
        lam_star=batch.lam_star,
    )


def _non_finite_cause(
    model: torch.nn.Module, batch: Sequence[Any], training_state: TrainingState
) -> str:
    """Why a loss is not finite: the weights, the data or the step size."""
    bad = [name for name, p in model.named_parameters() if not p.isfinite().all()]
    where = f"step {training_state.get_step()} (epoch {training_state.get_epoch()})"
    if bad:
        return (
            f"the model's weights are not finite at {where} (first: {bad[0]}): a "
            "corrupted --resume checkpoint, or training diverged (lower --lr)"
        )
    A, b, c = batch[1:4]
    largest = max(float(t.abs().max()) for t in (A, b, c))
    if not math.isfinite(largest) or largest > 1e6:
        return (
            f"the batch at {where} holds coefficients of magnitude {largest:.3g} "
            "(instances are scaled to at most 1): check the dataset files"
        )
    return (
        f"the training loss is not finite at {where} with finite weights and "
        "data: lower --lr or check the loss weights"
    )


def train_epoch(
    model: torch.nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    device: str,
    training_state: TrainingState,
    primal_weight: float,
    dual_weight: float,
    stationarity_weight: float,
    complementary_slackness_weight: float,
    args: argparse.Namespace | None = None,
    target_model: torch.nn.Module | None = None,
) -> float:
    """One pass over ``loader``; returns the mean training loss.

    Raises
    ------
    FloatingPointError
        If the loss is not finite (the message gives the step and the cause:
        weights, data or step size).
    """
    model.train()
    total, batches = 0.0, 0
    use_jepa = bool(args is not None and args.use_jepa)
    quiet = bool(args is not None and getattr(args, "quiet", False))
    weights = {
        "primal_weight": primal_weight,
        "dual_weight": dual_weight,
        "stationarity_weight": stationarity_weight,
        "complementary_slackness_weight": complementary_slackness_weight,
    }
    bar = tqdm(
        loader,
        desc=f"epoch {training_state.get_epoch()}",
        disable=quiet,
        leave=False,
    )
    for raw in bar:
        batch = to_device(raw, device)
        y_pred = predict(model, batch)
        loss_kkt, terms = task_loss(
            y_pred, batch, args, weights, training_state.penalty
        )
        loss = loss_kkt
        logged = {"train/loss_kkt": loss_kkt.item()}
        logged.update({f"train/{k}": float(v) for k, v in terms.items()})
        if use_jepa:
            loss_jepa = jepa_loss(model, target_model, batch, args)
            # Optional JEPA-only warm-up
            jepa_only = training_state.get_epoch() < (args.jepa_pretrain_epochs or 0)
            loss = loss_jepa if jepa_only else (loss_kkt + args.jepa_weight * loss_jepa)
            logged["train/loss_jepa"] = loss_jepa.item()
        value = loss.item()
        if not math.isfinite(value):
            raise FloatingPointError(_non_finite_cause(model, batch, training_state))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if use_jepa and args.jepa_mode == "ema" and target_model is not None:
            ema_update(target_model, model, m=args.ema_momentum)
        if training_state.get_step() % training_state.log_every == 0:
            logged["train/loss"] = value
            training_state.log(logged)
        training_state.step += 1
        total += value
        batches += 1
        bar.set_postfix(loss=f"{value:.4g}")
    return total / max(batches, 1)


def learning_rate(args: argparse.Namespace, epoch: int) -> float:
    """The learning rate of ``epoch``: ``--lr``, or its cosine decay over ``--epochs``.

    A function of the epoch alone, so a resumed run follows the same schedule.
    """
    if args.lr_schedule == "constant":
        return args.lr
    return 0.5 * args.lr * (1 + math.cos(math.pi * epoch / args.epochs))


def kkt_weights(args: argparse.Namespace) -> dict[str, float]:
    """The spec's four :func:`kkt_loss` weights from the flags."""
    return {
        "primal_weight": args.primal_weight,
        "dual_weight": args.dual_weight,
        "stationarity_weight": args.stationarity_weight,
        "complementary_slackness_weight": args.complementary_slackness_weight,
    }


@torch.no_grad()
def evaluate_kkt(
    model: torch.nn.Module, loader: DataLoader, device: str, args: argparse.Namespace
) -> dict[str, float]:
    """Mean task loss (at the initial ``--penalty``) and its terms over ``loader``."""
    model.eval()
    sums: dict[str, float] = {}
    batches = 0
    for raw in loader:
        batch = to_device(raw, device)
        loss, terms = task_loss(
            predict(model, batch), batch, args, kkt_weights(args), args.penalty
        )
        for key, value in {"loss": loss, **terms}.items():
            sums[key] = sums.get(key, 0.0) + float(value)
        batches += 1
    return {k: v / max(batches, 1) for k, v in sums.items()}


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from error
    if not value >= 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The training command line."""
    parser = argparse.ArgumentParser(
        prog="kkt-train",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    d = parser.add_argument_group("data")
    d.add_argument("--data_dir", type=Path, required=True, help="generate_instances")
    d.add_argument("--out_dir", type=Path, default=Path("runs/kkt"))
    d.add_argument(
        "--bounds_as_rows",
        action="store_true",
        help="the spec's form: bounds as rows, x free (default: bounds enforced "
        "by the output layer)",
    )
    m = parser.add_argument_group("model")
    m.add_argument("--model", choices=["gnn", "mlp"], default="gnn")
    m.add_argument(
        "--use_bipartite_graphs", action="store_true", help="GNN path (--model gnn)"
    )
    m.add_argument("--hidden", type=int, default=256, help="MLP width")
    m.add_argument("--num_layers", type=int, default=3, help="MLP trunk depth")
    m.add_argument("--embedding_size", type=int, default=64, help="GNN width")
    m.add_argument("--gnn_layers", type=int, default=4, help="message passes")
    t = parser.add_argument_group("training")
    t.add_argument("--epochs", type=int, default=30)
    t.add_argument("--batch_size", type=int, default=16)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument(
        "--lr_schedule",
        choices=["constant", "cosine"],
        default="cosine",
        help="cosine: decay --lr to 0 over --epochs (per epoch)",
    )
    t.add_argument("--weight_decay", type=_non_negative, default=0.0)
    t.add_argument(
        "--loss",
        choices=["kkt", "certificate"],
        default=None,
        help="default: certificate, or kkt with --bounds_as_rows",
    )
    t.add_argument("--primal_weight", type=_non_negative, default=0.1)
    t.add_argument("--dual_weight", type=_non_negative, default=0.1)
    t.add_argument("--stationarity_weight", type=_non_negative, default=0.6)
    t.add_argument("--complementary_slackness_weight", type=_non_negative, default=0.2)
    t.add_argument(
        "--gap_weight", type=_non_negative, default=1.0, help="certificate loss"
    )
    t.add_argument(
        "--penalty",
        type=_non_negative,
        default=3.0,
        help="certificate loss: weight of the primal and dual residuals",
    )
    t.add_argument(
        "--penalty_schedule",
        choices=["constant", "adaptive"],
        default="constant",
        help="adaptive: multiply the penalty by --penalty_growth after an epoch "
        "whose validation residuals did not fall below 0.8 x the previous",
    )
    t.add_argument("--penalty_growth", type=float, default=2.0)
    t.add_argument("--penalty_max", type=float, default=1000.0)
    t.add_argument(
        "--supervised_weight",
        type=_non_negative,
        default=0.0,
        help="certificate loss: weight of the distance to HiGHS's labels",
    )
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--devices", default="cpu", help="cpu, or a CUDA index")
    t.add_argument(
        "--num_threads",
        type=int,
        default=0,
        help="CPU threads for torch (0: torch's default); 1 is fastest on a "
        "shared or busy machine",
    )
    t.add_argument("--log_every", type=int, default=10, help="steps between logs")
    t.add_argument("--resume", type=Path, default=None, help="a last.pt to resume")
    t.add_argument(
        "--overwrite",
        action="store_true",
        help="start afresh in an --out_dir that holds a run",
    )
    t.add_argument(
        "--time_budget_s",
        type=float,
        default=None,
        help="stop after the epoch in which this many seconds have passed",
    )
    t.add_argument(
        "--wandb_mode", choices=["online", "offline", "disabled"], default="disabled"
    )
    t.add_argument("--wandb_project", default="kkt-nets")
    t.add_argument("--quiet", action="store_true", help="no progress bars")
    t.add_argument("--use_jepa", action="store_true", help="Enable JEPA training")
    t.add_argument("--jepa_mode", choices=["ema", "simsiam"], default="ema",
                   help="EMA teacher (BYOL/I-JEPA) or SimSiam (no EMA)")  # fmt: skip
    t.add_argument("--jepa_weight", type=float, default=0.2, help="Weight λ for JEPA loss")  # fmt: skip  # noqa: E501
    t.add_argument("--jepa_pretrain_epochs", type=int, default=0,
                   help="JEPA-only epochs before joint KKT+JEPA")  # fmt: skip
    t.add_argument("--jepa_mask_ratio_entries", type=float, default=0.5,
                   help="MLP: fraction of entries in [vec(A), b, c] masked in the context view")  # fmt: skip  # noqa: E501
    t.add_argument("--jepa_mask_ratio_nodes", type=float, default=0.3,
                   help="GNN: fraction of variable/constraint nodes masked in the context view")  # fmt: skip  # noqa: E501
    t.add_argument("--ema_momentum", type=float, default=0.996,
                   help="Momentum for EMA teacher (used only when --jepa_mode=ema)")  # fmt: skip  # noqa: E501
    return parser


def check_args(args: argparse.Namespace) -> None:
    """Reject settings outside their ranges, naming the flag; resolve defaults.

    Sets ``args.use_bipartite_graphs`` from ``--model`` and ``args.loss`` when
    not given (``kkt`` with ``--bounds_as_rows``, else ``certificate``).
    """
    if args.use_bipartite_graphs and args.model == "mlp":
        raise ValueError("--use_bipartite_graphs selects the GNN: drop --model mlp")
    args.use_bipartite_graphs = args.use_bipartite_graphs or args.model == "gnn"
    args.model = "gnn" if args.use_bipartite_graphs else "mlp"
    if args.loss is None:
        args.loss = "kkt" if args.bounds_as_rows else "certificate"
    positive = ("epochs", "batch_size", "hidden", "num_layers", "embedding_size")
    for name in (*positive, "gnn_layers", "log_every"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be >= 1, got {getattr(args, name)}")
    if not (math.isfinite(args.lr) and args.lr > 0):
        raise ValueError(f"--lr must be positive, got {args.lr}")
    for name in ("jepa_mask_ratio_entries", "jepa_mask_ratio_nodes"):
        if not 0.0 <= getattr(args, name) < 1.0:
            raise ValueError(f"--{name} must be in [0, 1), got {getattr(args, name)}")
    if not 0.0 <= args.ema_momentum <= 1.0:
        raise ValueError(f"--ema_momentum must be in [0, 1], got {args.ema_momentum}")
    if args.num_threads < 0:
        raise ValueError(f"--num_threads must be >= 0, got {args.num_threads}")
    if args.time_budget_s is not None and not args.time_budget_s > 0:
        raise ValueError(f"--time_budget_s must be positive, got {args.time_budget_s}")
    if args.jepa_pretrain_epochs < 0 or not args.jepa_weight >= 0:
        raise ValueError("--jepa_pretrain_epochs and --jepa_weight must be >= 0")
    if not (args.penalty_growth >= 1 and args.penalty_max >= args.penalty):
        raise ValueError("--penalty_growth must be >= 1 and --penalty_max >= --penalty")
    weights = (
        "primal_weight",
        "dual_weight",
        "stationarity_weight",
        "complementary_slackness_weight",
        "gap_weight",
        "penalty",
        "supervised_weight",
        "weight_decay",
    )
    for name in weights:  # also when called without the parser
        value = getattr(args, name)
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"--{name} must be a finite number >= 0, got {value}")
    if args.supervised_weight > 0 and args.loss != "certificate":
        raise ValueError("--supervised_weight needs --loss certificate")


def resolve_device(devices: str, flag: str = "--devices") -> str:
    """``cpu``, or ``cuda:N`` for ``N``, ``cuda:N`` or ``cuda``; warns without CUDA.

    Raises
    ------
    ValueError
        If ``devices`` is neither ``cpu`` nor a non-negative CUDA index.
    """
    if devices == "cpu":
        return "cpu"
    first = str(devices).split(",")[0].strip()
    first = "0" if first == "cuda" else first.removeprefix("cuda:")
    if not first.isdigit():
        raise ValueError(f"{flag} must be 'cpu' or a CUDA index, got {devices!r}")
    if not torch.cuda.is_available():
        message = (
            f"{flag} {devices} asks for CUDA but torch sees no CUDA device "
            f"(torch {torch.__version__}); running on the CPU"
        )
        warnings.warn(message, RuntimeWarning, stacklevel=2)
        print(f"WARNING: {message}", file=sys.stderr)
        return "cpu"
    if int(first) >= torch.cuda.device_count():
        raise ValueError(
            f"{flag} {devices}: only {torch.cuda.device_count()} CUDA device(s)"
        )
    return f"cuda:{first}"


def build_model(args: argparse.Namespace, m: int, n: int) -> torch.nn.Module:
    """The GNN (``--model gnn``, ``--use_bipartite_graphs``) or the MLP for ``m x n``.

    Raises
    ------
    MemoryError
        If the parameters and their optimizer state would not fit in memory
        (estimated first; the message names the flags and the estimate).
    """
    check_memory(
        model_memory_estimate(args, m, n),
        "the model and its optimizer state",
        "--embedding_size" if args.use_bipartite_graphs else "--hidden / --num_layers",
    )
    if args.use_bipartite_graphs:
        return GNNPolicy(args)
    return KKTNetMLP(m, n, hidden=args.hidden, num_layers=args.num_layers)


def load_instances(
    args: argparse.Namespace, split: str
) -> tuple[list[LP], list[tuple[Any, Any]] | None]:
    """The LPs of ``split`` in the run's form, with labels if the loss uses them."""
    instances = load_split(args.data_dir, split)
    lps, labels = [], []
    for lp, solution in instances:
        if args.bounds_as_rows:
            lp, lam = bounds_to_rows(lp, solution.lam)
        else:
            lam = solution.lam
        lps.append(lp)
        labels.append((solution.x, lam))
    return lps, labels if args.supervised_weight > 0 else None


def make_loaders(
    args: argparse.Namespace,
) -> tuple[DataLoader, DataLoader, int, int]:
    """Training and validation loaders and the padded sizes (M, N)."""
    train_lps, train_labels = load_instances(args, "train")
    val_lps, val_labels = load_instances(args, "val")
    if not train_lps:
        raise ValueError(f"--data_dir {args.data_dir} has no training instances")
    if not val_lps:
        raise ValueError(f"--data_dir {args.data_dir} has no validation instances")
    m = max(lp.m for lp in train_lps + val_lps)
    n = max(lp.n for lp in train_lps + val_lps)
    generator = torch.Generator().manual_seed(args.seed)
    if args.use_bipartite_graphs:
        train_set = GraphDataset(train_lps, labels=train_labels)
        val_set = GraphDataset(val_lps, labels=val_labels)
        collate = pad_collate_graphs
    else:
        train_set = LPDataset(train_lps, max_m=m, max_n=n, labels=train_labels)
        val_set = LPDataset(val_lps, max_m=m, max_n=n, labels=val_labels)
        collate = pad_collate
    train_loader = DataLoader(
        train_set,
        batch_size=args.batch_size,
        shuffle=True,
        collate_fn=collate,
        generator=generator,
    )
    val_loader = DataLoader(val_set, batch_size=args.batch_size, collate_fn=collate)
    return train_loader, val_loader, m, n


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint written by :func:`train`.

    Raises
    ------
    ValueError
        If the file is missing, unreadable, of another format version, lacks
        the expected entries or holds non-finite weights (the message names
        the file).
    """
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # torch raises several types for bad files
        raise ValueError(f"cannot read checkpoint {path}: {error}") from error
    missing = {"epoch", "model", "optimizer", "args"} - set(checkpoint)
    if not isinstance(checkpoint, dict) or missing:
        raise ValueError(f"checkpoint {path} is not a kkt-nets checkpoint")
    version = checkpoint.get("format", 1)
    if version != CHECKPOINT_FORMAT:
        raise ValueError(
            f"checkpoint {path} has format {version}; this kkt-nets reads format "
            f"{CHECKPOINT_FORMAT} (retrain the model)"
        )
    for name, tensor in checkpoint["model"].items():
        if tensor.is_floating_point() and not bool(tensor.isfinite().all()):
            raise ValueError(f"checkpoint {path} holds non-finite weights in {name}")
    return checkpoint


def _check_resume(checkpoint: dict[str, Any], args: argparse.Namespace) -> None:
    """Refuse a checkpoint whose model or data differ from this run's flags."""
    saved = checkpoint["args"]
    for name in ARCHITECTURE_FLAGS:
        if saved.get(name) != getattr(args, name):
            raise ValueError(
                f"--resume {args.resume}: the checkpoint was trained with "
                f"--{name} {saved.get(name)!r}, this run asks for "
                f"{getattr(args, name)!r}"
            )
    if not args.use_bipartite_graphs and (saved["max_m"], saved["max_n"]) != (
        args.max_m,
        args.max_n,
    ):
        raise ValueError(
            f"--resume {args.resume}: the checkpoint's MLP takes LPs of at most "
            f"{saved['max_m']} x {saved['max_n']}, --data_dir {args.data_dir} "
            f"has {args.max_m} x {args.max_n}"
        )


def prepare_out_dir(args: argparse.Namespace) -> None:
    """Check ``--out_dir`` before any work; clear it with ``--overwrite``.

    Raises
    ------
    ValueError
        If it is a file, not writable, or already holds a run and neither
        ``--resume`` nor ``--overwrite`` is given.
    """
    out = args.out_dir
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out_dir {out} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise ValueError(f"--out_dir {out} is not writable: {error}") from error
    remove_stale_temporaries(out)
    outputs = [out / name for name in ("metrics.jsonl", "last.pt", "best.pt")]
    if args.resume is None and any(path.exists() for path in outputs):
        if not args.overwrite:
            raise ValueError(
                f"--out_dir {out} already holds a run: pass --resume "
                f"{out / 'last.pt'} to continue it or --overwrite to start afresh"
            )
        for path in outputs:
            path.unlink(missing_ok=True)


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Run the training loop; returns the final metrics.

    Returns
    -------
    dict
        ``best_val_loss``, ``last_train_loss``, ``epochs_run``, ``steps``,
        ``train_seconds``, ``penalty`` and the paths of ``last.pt`` / ``best.pt``.
    """
    check_args(args)
    prepare_out_dir(args)
    checkpoint = load_checkpoint(args.resume) if args.resume is not None else None
    if args.num_threads > 0:
        torch.set_num_threads(args.num_threads)
    torch.manual_seed(args.seed)
    device = resolve_device(args.devices)
    train_loader, val_loader, m, n = make_loaders(args)
    args.max_m, args.max_n = m, n
    if checkpoint is not None:
        _check_resume(checkpoint, args)
    model = build_model(args, m, n)
    if checkpoint is None:
        model.fit_normalization(train_loader)
    model = model.to(device)
    target_model = None
    if args.use_jepa and args.jepa_mode == "ema":
        target_model = deepcopy(model)
        for p in target_model.parameters():
            p.requires_grad_(False)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=args.lr, weight_decay=args.weight_decay
    )
    start_epoch, best_val = 0, math.inf
    logger = MetricsLogger(
        args.out_dir, args.wandb_mode, _plain(vars(args)), args.wandb_project
    )
    training_state = TrainingState(args.log_every, logger, penalty=args.penalty)
    previous_residual = math.inf
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        for group in optimizer.param_groups:  # the flags of this run win
            group["lr"], group["weight_decay"] = args.lr, args.weight_decay
        if target_model is not None and "target_model" in checkpoint:
            target_model.load_state_dict(checkpoint["target_model"])
        start_epoch = checkpoint["epoch"] + 1
        training_state.step = checkpoint.get("step", 0)
        training_state.penalty = checkpoint.get("penalty", args.penalty)
        previous_residual = checkpoint.get("val_residual", math.inf)
        best_val = checkpoint.get("best_val_loss", math.inf)
    train_loss = math.nan
    budget = args.time_budget_s
    began = time.perf_counter()
    epochs_run = 0
    try:
        for epoch in range(start_epoch, args.epochs):
            if budget is not None and time.perf_counter() - began > budget:
                break
            epochs_run += 1
            training_state.epoch = epoch
            # shuffles and JEPA masks seeded by (seed, epoch): resuming is exact
            train_loader.generator.manual_seed(args.seed + epoch)
            torch.manual_seed(args.seed + epoch)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(args, epoch)
            started = time.perf_counter()
            train_loss = train_epoch(
                model=model,
                loader=train_loader,
                optimizer=optimizer,
                device=device,
                training_state=training_state,
                primal_weight=args.primal_weight,
                dual_weight=args.dual_weight,
                stationarity_weight=args.stationarity_weight,
                complementary_slackness_weight=args.complementary_slackness_weight,
                args=args,
                target_model=target_model,
            )
            val = evaluate_kkt(model, val_loader, device, args)
            residual = val.get("primal", 0.0) + val.get("dual", 0.0)
            training_state.log(
                {
                    "epoch": epoch,
                    "train/epoch_loss": train_loss,
                    "epoch_seconds": time.perf_counter() - started,
                    "penalty": training_state.penalty,
                    "lr": optimizer.param_groups[0]["lr"],
                    **{f"val/{k}": v for k, v in val.items()},
                }
            )
            if (
                args.penalty_schedule == "adaptive"
                and residual > 0.8 * previous_residual
            ):
                training_state.penalty = min(
                    args.penalty_max, training_state.penalty * args.penalty_growth
                )
            previous_residual = residual
            ckpt = {
                "format": CHECKPOINT_FORMAT,
                "epoch": epoch,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "args": _plain(vars(args)),
                "step": training_state.get_step(),
                "penalty": training_state.penalty,
                "val_residual": residual,
                "best_val_loss": min(best_val, val["loss"]),
            }
            if target_model is not None:
                ckpt["target_model"] = target_model.state_dict()
            atomic_write(args.out_dir / "last.pt", partial(torch.save, ckpt))
            if val["loss"] < best_val:
                best_val = val["loss"]
                atomic_write(args.out_dir / "best.pt", partial(torch.save, ckpt))
    finally:
        logger.close()
    return {
        "best_val_loss": best_val,
        "last_train_loss": train_loss,
        "epochs_run": epochs_run,
        "train_seconds": time.perf_counter() - began,
        "steps": training_state.get_step(),
        "penalty": training_state.penalty,
        "last": args.out_dir / "last.pt",
        "best": args.out_dir / "best.pt",
    }


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """Arguments with paths as strings (for checkpoints and wandb)."""
    return {k: str(v) if isinstance(v, Path) else v for k, v in values.items()}


def _terminate(signum: int, frame: FrameType | None) -> None:
    """SIGTERM as an exception, so partial files are cleaned up on the way out."""
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point ``kkt-train``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        result = train(args)
    except (ValueError, FileNotFoundError, MemoryError) as error:
        parser.error(str(error))
    print(
        f"trained {result['epochs_run']} epochs ({result['steps']} steps): "
        f"best val loss {result['best_val_loss']:.4g}; checkpoints "
        f"{result['last']}, {result['best']}"
    )


if __name__ == "__main__":
    main()
