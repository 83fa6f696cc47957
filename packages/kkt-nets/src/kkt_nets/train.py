"""Train a KKT network (bipartite GNN or MLP) on an LP dataset, optionally with JEPA.

``python -m kkt_nets.train --data-dir DIR [--model {gnn,mlp}] [--use-jepa
--jepa-mode {ema,simsiam}] ...`` (console script ``kkt-train``).

Two forms of the problem:

* default: bounds on the columns, enforced by the networks' output layer,
  trained on :func:`~kkt_nets.models.losses.certificate_loss` (relative
  duality gap of the prediction's Lagrangian certificate plus normalized
  primal and dual residuals; ``--penalty`` weighs the residuals, optionally
  raised by ``--penalty-schedule adaptive``; ``--supervised-weight`` adds a
  term on HiGHS's labels);
* ``--bounds-as-rows``: the spec's form (bounds as rows, ``x`` free) with the
  spec's :func:`~kkt_nets.models.losses.kkt_loss` and its default weights.

``--loss`` picks either loss for either form. JEPA: ``jepa_weight`` times the
JEPA loss in embedding space when ``--use-jepa``; JEPA alone while ``epoch <
--jepa-pretrain-epochs``. In ``ema`` mode a frozen copy of the model (the
target) follows the online model by an exponential moving average after every
optimizer step; ``simsiam`` uses the online model with a stop-gradient and
creates no target.

Every run writes ``OUT/metrics.jsonl`` (one JSON object per logged step or
epoch) and, with ``--wandb-mode online|offline``, logs the same to wandb.
Checkpoints ``OUT/last.pt`` (every epoch) and ``OUT/best.pt`` (best
validation loss at the initial weights) hold the model, optimizer, epoch,
step, penalty, the run's settings (:meth:`~kkt_nets.config.TrainConfig.to_dict`)
and, in ``ema`` mode, ``target_model``; ``--resume
OUT/last.pt`` restores all of them (and refuses a checkpoint whose model or
data differ, naming the flag). Each epoch's shuffle and JEPA masks are seeded
by ``(seed, epoch)``, so a resumed run continues exactly as an uninterrupted
one would. An existing run folder is only reused with ``--resume`` or
``--overwrite``.

The flags are parsed once into a frozen :class:`~kkt_nets.config.TrainConfig`
(:func:`parse_config`); everything below the command line takes that record.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
import time
import warnings
from collections.abc import Sequence
from copy import deepcopy
from dataclasses import MISSING, asdict, dataclass, fields, replace
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from kkt_nets.cli import add_flag, flag
from kkt_nets.config import CHOICES, TrainConfig
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
from kkt_nets.metrics import METRICS_FILE, MetricsLogger
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
    config: TrainConfig,
) -> torch.Tensor:
    """The JEPA loss of a batch: masked context view vs target view."""
    target_ref = target_model if config.jepa_mode == "ema" else model
    if isinstance(batch, GraphBatch):
        ctx, tgt, m_cons, m_vars = make_gnn_views(
            batch.batch_graph, config.jepa_mask_ratio_nodes
        )
        return jepa_loss_gnn(
            model, target_ref, ctx, tgt, m_cons, m_vars, config.jepa_mode
        )
    model_input, A, b, c, _mask_m, _mask_n = batch
    x_ctx, x_tgt = make_mlp_views(model_input, A, b, c, config.jepa_mask_ratio_entries)
    return jepa_loss_mlp(model, target_ref, x_ctx, x_tgt, config.jepa_mode)


def task_loss(
    y_pred: torch.Tensor,
    batch: Sequence[Any],
    config: TrainConfig,
    weights: dict[str, float],
    penalty: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The task loss of ``--loss`` (KKT or certificate) of a batch.

    Parameters
    ----------
    y_pred : Tensor
        ``[B, N + M]`` predictions.
    batch : LPBatch or GraphBatch
    config : TrainConfig
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
    bounds = {} if config.bounds_as_rows else {"lb": batch.lb, "ub": batch.ub}
    if config.loss == "kkt":
        return kkt_loss(y_pred, A, b, c, mask_m, mask_n, **weights, **bounds)
    return certificate_loss(
        y_pred,
        A,
        b,
        c,
        mask_m,
        mask_n,
        **bounds,
        gap_weight=config.gap_weight,
        primal_weight=penalty,
        dual_weight=penalty,
        supervised_weight=config.supervised_weight,
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
    config: TrainConfig | None = None,
    target_model: torch.nn.Module | None = None,
) -> float:
    """One pass over ``loader``; returns the mean training loss.

    The spec's signature, with the run's :class:`~kkt_nets.config.TrainConfig`
    where the spec passes ``args`` (``None``: no JEPA, certificate loss).

    Raises
    ------
    FloatingPointError
        If the loss is not finite (the message gives the step and the cause:
        weights, data or step size).
    """
    model.train()
    total, batches = 0.0, 0
    if config is None:
        config = TrainConfig(data_dir=Path("."))
    use_jepa = config.use_jepa
    weights = {
        "primal_weight": primal_weight,
        "dual_weight": dual_weight,
        "stationarity_weight": stationarity_weight,
        "complementary_slackness_weight": complementary_slackness_weight,
    }
    bar = tqdm(
        loader,
        desc=f"epoch {training_state.get_epoch()}",
        disable=config.quiet,
        leave=False,
    )
    for raw in bar:
        batch = to_device(raw, device)
        y_pred = predict(model, batch)
        loss_kkt, terms = task_loss(
            y_pred, batch, config, weights, training_state.penalty
        )
        loss = loss_kkt
        logged = {"train/loss_kkt": loss_kkt.item()}
        logged.update({f"train/{k}": float(v) for k, v in terms.items()})
        if use_jepa:
            loss_jepa = jepa_loss(model, target_model, batch, config)
            # Optional JEPA-only warm-up
            jepa_only = training_state.get_epoch() < config.jepa_pretrain_epochs
            loss = (
                loss_jepa if jepa_only else (loss_kkt + config.jepa_weight * loss_jepa)
            )
            logged["train/loss_jepa"] = loss_jepa.item()
        value = loss.item()
        if not math.isfinite(value):
            raise FloatingPointError(_non_finite_cause(model, batch, training_state))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if use_jepa and config.jepa_mode == "ema" and target_model is not None:
            ema_update(target_model, model, m=config.ema_momentum)
        if training_state.get_step() % training_state.log_every == 0:
            logged["train/loss"] = value
            training_state.log(logged)
        training_state.step += 1
        total += value
        batches += 1
        bar.set_postfix(loss=f"{value:.4g}")
    return total / max(batches, 1)


def learning_rate(config: TrainConfig, epoch: int) -> float:
    """The learning rate of ``epoch``: ``--lr``, or its cosine decay over ``--epochs``.

    A function of the epoch alone, so a resumed run follows the same schedule.
    """
    if config.lr_schedule == "constant":
        return config.lr
    return 0.5 * config.lr * (1 + math.cos(math.pi * epoch / config.epochs))


def kkt_weights(config: TrainConfig) -> dict[str, float]:
    """The spec's four :func:`kkt_loss` weights of a run."""
    return {
        "primal_weight": config.primal_weight,
        "dual_weight": config.dual_weight,
        "stationarity_weight": config.stationarity_weight,
        "complementary_slackness_weight": config.complementary_slackness_weight,
    }


@torch.no_grad()
def evaluate_kkt(
    model: torch.nn.Module, loader: DataLoader, device: str, config: TrainConfig
) -> dict[str, float]:
    """Mean task loss (at the initial ``--penalty``) and its terms over ``loader``."""
    model.eval()
    sums: dict[str, float] = {}
    batches = 0
    for raw in loader:
        batch = to_device(raw, device)
        loss, terms = task_loss(
            predict(model, batch), batch, config, kkt_weights(config), config.penalty
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


DEFAULTS = {
    field.name: field.default
    for field in fields(TrainConfig)
    if field.default is not MISSING
}
"""The default of every training setting that has one (the parser's defaults)."""


def build_parser() -> argparse.ArgumentParser:
    """The training command line (defaults from :class:`TrainConfig`)."""
    parser = argparse.ArgumentParser(
        prog="kkt-train",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )

    def add(group: argparse._ArgumentGroup, name: str, **kwargs: Any) -> None:
        if kwargs.get("action") != "store_true":
            kwargs.setdefault("choices", CHOICES.get(name))
        add_flag(group, name, default=DEFAULTS.get(name, argparse.SUPPRESS), **kwargs)

    d = parser.add_argument_group("data")
    add(d, "data_dir", type=Path, required=True, help="a kkt-generate dataset")
    add(d, "out_dir", type=Path)
    add(d, "bounds_as_rows", action="store_true",
        help="the spec's form: bounds as rows, x free (otherwise the output "
        "layer enforces the bounds)")  # fmt: skip
    m = parser.add_argument_group("model")
    add(m, "model")
    add(m, "use_bipartite_graphs", action="store_true", help="GNN path (--model gnn)")
    add(m, "hidden", type=int, help="MLP width")
    add(m, "num_layers", type=int, help="MLP trunk depth")
    add(m, "embedding_size", type=int, help="GNN width")
    add(m, "gnn_layers", type=int, help="message passes")
    t = parser.add_argument_group("training")
    add(t, "epochs", type=int)
    add(t, "batch_size", type=int)
    add(t, "lr", type=float)
    add(t, "lr_schedule", help="cosine: decay --lr to 0 over --epochs (per epoch)")
    add(t, "weight_decay", type=_non_negative)
    add(t, "loss", help="default: certificate, or kkt with --bounds-as-rows")
    for name in ("primal_weight", "dual_weight", "stationarity_weight"):
        add(t, name, type=_non_negative, help="kkt loss")
    add(t, "complementary_slackness_weight", type=_non_negative, help="kkt loss")
    add(t, "gap_weight", type=_non_negative, help="certificate loss")
    add(t, "penalty", type=_non_negative,
        help="certificate loss: weight of the primal and dual residuals")  # fmt: skip
    add(t, "penalty_schedule",
        help="adaptive: multiply the penalty by --penalty-growth after an epoch "
        "whose validation residuals did not fall below 0.8 x the previous")  # fmt: skip
    add(t, "penalty_growth", type=float)
    add(t, "penalty_max", type=float)
    add(t, "supervised_weight", type=_non_negative,
        help="certificate loss: weight of the distance to HiGHS's labels")  # fmt: skip
    add(t, "seed", type=int)
    add(t, "devices", help="cpu, or a CUDA index")
    add(t, "num_threads", type=int,
        help="CPU threads for torch (0: torch's default); 1 is fastest on a "
        "shared or busy machine")  # fmt: skip
    add(t, "log_every", type=int, help="steps between logs")
    add(t, "resume", type=Path, help="a last.pt to resume")
    add(t, "overwrite", action="store_true",
        help="start afresh in an --out-dir that holds a run")  # fmt: skip
    add(t, "time_budget_s", type=float,
        help="stop after the epoch in which this many seconds have passed")  # fmt: skip
    add(t, "wandb_mode")
    add(t, "wandb_project")
    add(t, "quiet", action="store_true", help="no progress bars")
    add(t, "use_jepa", action="store_true", help="Enable JEPA training")
    add(t, "jepa_mode", help="EMA teacher (BYOL/I-JEPA) or SimSiam (no EMA)")
    add(t, "jepa_weight", type=float, help="Weight λ for JEPA loss")
    add(t, "jepa_pretrain_epochs", type=int,
        help="JEPA-only epochs before joint KKT+JEPA")  # fmt: skip
    add(t, "jepa_mask_ratio_entries", type=float,
        help="MLP: fraction of entries in [vec(A), b, c] masked in the context view")  # fmt: skip  # noqa: E501
    add(t, "jepa_mask_ratio_nodes", type=float,
        help="GNN: fraction of variable/constraint nodes masked in the context view")  # fmt: skip  # noqa: E501
    add(t, "ema_momentum", type=float,
        help="Momentum for EMA teacher (used only when --jepa-mode=ema)")  # fmt: skip
    return parser


def parse_config(argv: Sequence[str] | None = None) -> TrainConfig:
    """The :class:`TrainConfig` of a ``kkt-train`` command line.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments (default ``sys.argv[1:]``).

    Raises
    ------
    SystemExit
        If a flag does not parse (argparse's message and exit status 2).
    ValueError
        If a value is out of range (the message names the flag).
    """
    return TrainConfig(**vars(build_parser().parse_args(argv)))


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


def build_model(config: TrainConfig, m: int, n: int) -> torch.nn.Module:
    """The GNN (``--model gnn``) or the MLP for LPs of up to ``m x n``.

    Raises
    ------
    MemoryError
        If the parameters and their optimizer state would not fit in memory
        (estimated first; the message names the flags and the estimate).
    """
    check_memory(
        model_memory_estimate(config, m, n),
        "the model and its optimizer state",
        flag("embedding_size")
        if config.use_bipartite_graphs
        else f"--hidden / {flag('num_layers')}",
    )
    if config.use_bipartite_graphs:
        return GNNPolicy(config.embedding_size, config.gnn_layers)
    return KKTNetMLP(m, n, hidden=config.hidden, num_layers=config.num_layers)


def load_instances(
    config: TrainConfig, split: str
) -> tuple[list[LP], list[tuple[Any, Any]] | None]:
    """The LPs of ``split`` in the run's form, with labels if the loss uses them."""
    instances = load_split(config.data_dir, split)
    lps, labels = [], []
    for lp, solution in instances:
        if config.bounds_as_rows:
            lp, lam = bounds_to_rows(lp, solution.lam)
        else:
            lam = solution.lam
        lps.append(lp)
        labels.append((solution.x, lam))
    return lps, labels if config.supervised_weight > 0 else None


def make_loaders(config: TrainConfig) -> tuple[DataLoader, DataLoader, int, int]:
    """Training and validation loaders and the padded sizes (M, N)."""
    train_lps, train_labels = load_instances(config, "train")
    val_lps, val_labels = load_instances(config, "val")
    data_flag = f"{flag('data_dir')} {config.data_dir}"
    if not train_lps:
        raise ValueError(f"{data_flag} has no training instances")
    if not val_lps:
        raise ValueError(f"{data_flag} has no validation instances")
    m = max(lp.m for lp in train_lps + val_lps)
    n = max(lp.n for lp in train_lps + val_lps)
    generator = torch.Generator().manual_seed(config.seed)
    if config.use_bipartite_graphs:
        train_set = GraphDataset(train_lps, labels=train_labels)
        val_set = GraphDataset(val_lps, labels=val_labels)
        collate = pad_collate_graphs
    else:
        train_set = LPDataset(train_lps, max_m=m, max_n=n, labels=train_labels)
        val_set = LPDataset(val_lps, max_m=m, max_n=n, labels=val_labels)
        collate = pad_collate
    train_loader = DataLoader(
        train_set,
        batch_size=config.batch_size,
        shuffle=True,
        collate_fn=collate,
        generator=generator,
    )
    val_loader = DataLoader(val_set, batch_size=config.batch_size, collate_fn=collate)
    return train_loader, val_loader, m, n


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint written by :func:`train`, its settings under ``config``.

    ``checkpoint["config"]`` is the plain dict of :meth:`TrainConfig.to_dict`
    (a checkpoint that stores it under its earlier name ``args`` is read the
    same way); :func:`checkpoint_config` rebuilds the record.

    Raises
    ------
    ValueError
        If the file is missing, unreadable, of another format version, lacks
        the expected entries, holds settings that do not validate or holds
        non-finite weights (the message names the file).
    """
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # torch raises several types for bad files
        raise ValueError(f"cannot read checkpoint {path}: {error}") from error
    if not isinstance(checkpoint, dict):
        raise ValueError(f"checkpoint {path} is not a kkt-nets checkpoint")
    if "config" not in checkpoint and "args" in checkpoint:
        checkpoint["config"] = checkpoint.pop("args")
    if {"epoch", "model", "optimizer", "config"} - set(checkpoint):
        raise ValueError(f"checkpoint {path} is not a kkt-nets checkpoint")
    version = checkpoint.get("format", 1)
    if version != CHECKPOINT_FORMAT:
        raise ValueError(
            f"checkpoint {path} has format {version}; this kkt-nets reads format "
            f"{CHECKPOINT_FORMAT} (retrain the model)"
        )
    try:
        TrainConfig.from_dict(checkpoint["config"])
    except (ValueError, TypeError) as error:
        raise ValueError(f"checkpoint {path} holds bad settings: {error}") from error
    for name, tensor in checkpoint["model"].items():
        if tensor.is_floating_point() and not bool(tensor.isfinite().all()):
            raise ValueError(f"checkpoint {path} holds non-finite weights in {name}")
    return checkpoint


def checkpoint_config(checkpoint: dict[str, Any]) -> TrainConfig:
    """The :class:`TrainConfig` of a checkpoint read by :func:`load_checkpoint`."""
    return TrainConfig.from_dict(checkpoint["config"])


def _check_resume(checkpoint: dict[str, Any], config: TrainConfig) -> None:
    """Refuse a checkpoint whose model or data differ from this run's settings."""
    saved = checkpoint_config(checkpoint)
    resume = f"{flag('resume')} {config.resume}"
    for name in ARCHITECTURE_FLAGS:
        if getattr(saved, name) != getattr(config, name):
            raise ValueError(
                f"{resume}: the checkpoint was trained with {flag(name)} "
                f"{getattr(saved, name)!r}, this run asks for "
                f"{getattr(config, name)!r}"
            )
    if not config.use_bipartite_graphs and (saved.max_m, saved.max_n) != (
        config.max_m,
        config.max_n,
    ):
        raise ValueError(
            f"{resume}: the checkpoint's MLP takes LPs of at most "
            f"{saved.max_m} x {saved.max_n}, {flag('data_dir')} {config.data_dir} "
            f"has {config.max_m} x {config.max_n}"
        )


def prepare_out_dir(config: TrainConfig) -> None:
    """Check ``--out-dir`` before any work; clear it with ``--overwrite``.

    Raises
    ------
    ValueError
        If it is a file, not writable, or already holds a run and neither
        ``--resume`` nor ``--overwrite`` is given.
    """
    out = config.out_dir
    out_flag = f"{flag('out_dir')} {out}"
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out_flag} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise ValueError(f"{out_flag} is not writable: {error}") from error
    remove_stale_temporaries(out)
    outputs = [out / name for name in (METRICS_FILE, "last.pt", "best.pt")]
    if config.resume is None and any(path.exists() for path in outputs):
        if not config.overwrite:
            raise ValueError(
                f"{out_flag} already holds a run: pass --resume "
                f"{out / 'last.pt'} to continue it or --overwrite to start afresh"
            )
        for path in outputs:
            path.unlink(missing_ok=True)


@dataclass(frozen=True)
class TrainResult:
    """What a training run did and where its checkpoints are.

    Attributes
    ----------
    best_val_loss : float
        Lowest validation loss (at the initial penalty) so far.
    last_train_loss : float
        Mean training loss of the last epoch run (NaN if none ran).
    epochs_run : int
        Epochs run by this call (a resumed run counts only its own).
    steps : int
        Optimizer steps of the whole run.
    train_seconds : float
        Wall time of this call's epochs.
    penalty : float
        Weight of the residual terms at the end.
    last, best : Path
        ``last.pt`` and ``best.pt``.
    """

    best_val_loss: float
    last_train_loss: float
    epochs_run: int
    steps: int
    train_seconds: float
    penalty: float
    last: Path
    best: Path

    def to_dict(self) -> dict[str, Any]:
        """Plain values (paths as strings), for JSON."""
        return {
            key: str(value) if isinstance(value, Path) else value
            for key, value in asdict(self).items()
        }


def train(config: TrainConfig) -> TrainResult:
    """Run the training loop of ``config``.

    Returns
    -------
    TrainResult
    """
    prepare_out_dir(config)
    checkpoint = load_checkpoint(config.resume) if config.resume is not None else None
    if config.num_threads > 0:
        torch.set_num_threads(config.num_threads)
    torch.manual_seed(config.seed)
    device = resolve_device(config.devices, flag("devices"))
    train_loader, val_loader, m, n = make_loaders(config)
    config = replace(config, max_m=m, max_n=n)
    if checkpoint is not None:
        _check_resume(checkpoint, config)
    model = build_model(config, m, n)
    if checkpoint is None:
        model.fit_normalization(train_loader)
    model = model.to(device)
    target_model = None
    if config.use_jepa and config.jepa_mode == "ema":
        target_model = deepcopy(model)
        for p in target_model.parameters():
            p.requires_grad_(False)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    start_epoch, best_val = 0, math.inf
    logger = MetricsLogger(
        config.out_dir, config.wandb_mode, config.to_dict(), config.wandb_project
    )
    training_state = TrainingState(config.log_every, logger, penalty=config.penalty)
    previous_residual = math.inf
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        for group in optimizer.param_groups:  # the settings of this run win
            group["lr"], group["weight_decay"] = config.lr, config.weight_decay
        if target_model is not None and "target_model" in checkpoint:
            target_model.load_state_dict(checkpoint["target_model"])
        start_epoch = checkpoint["epoch"] + 1
        training_state.step = checkpoint.get("step", 0)
        training_state.penalty = checkpoint.get("penalty", config.penalty)
        previous_residual = checkpoint.get("val_residual", math.inf)
        best_val = checkpoint.get("best_val_loss", math.inf)
    train_loss = math.nan
    budget = config.time_budget_s
    began = time.perf_counter()
    epochs_run = 0
    try:
        for epoch in range(start_epoch, config.epochs):
            if budget is not None and time.perf_counter() - began > budget:
                break
            epochs_run += 1
            training_state.epoch = epoch
            # shuffles and JEPA masks seeded by (seed, epoch): resuming is exact
            train_loader.generator.manual_seed(config.seed + epoch)
            torch.manual_seed(config.seed + epoch)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(config, epoch)
            started = time.perf_counter()
            train_loss = train_epoch(
                model=model,
                loader=train_loader,
                optimizer=optimizer,
                device=device,
                training_state=training_state,
                primal_weight=config.primal_weight,
                dual_weight=config.dual_weight,
                stationarity_weight=config.stationarity_weight,
                complementary_slackness_weight=config.complementary_slackness_weight,
                config=config,
                target_model=target_model,
            )
            val = evaluate_kkt(model, val_loader, device, config)
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
                config.penalty_schedule == "adaptive"
                and residual > 0.8 * previous_residual
            ):
                training_state.penalty = min(
                    config.penalty_max, training_state.penalty * config.penalty_growth
                )
            previous_residual = residual
            ckpt = {
                "format": CHECKPOINT_FORMAT,
                "epoch": epoch,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "config": config.to_dict(),
                "step": training_state.get_step(),
                "penalty": training_state.penalty,
                "val_residual": residual,
                "best_val_loss": min(best_val, val["loss"]),
            }
            if target_model is not None:
                ckpt["target_model"] = target_model.state_dict()
            atomic_write(config.out_dir / "last.pt", partial(torch.save, ckpt))
            if val["loss"] < best_val:
                best_val = val["loss"]
                atomic_write(config.out_dir / "best.pt", partial(torch.save, ckpt))
    finally:
        logger.close()
    return TrainResult(
        best_val_loss=best_val,
        last_train_loss=train_loss,
        epochs_run=epochs_run,
        steps=training_state.get_step(),
        train_seconds=time.perf_counter() - began,
        penalty=training_state.penalty,
        last=config.out_dir / "last.pt",
        best=config.out_dir / "best.pt",
    )


def _terminate(signum: int, frame: FrameType | None) -> None:
    """SIGTERM as an exception, so partial files are cleaned up on the way out."""
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point ``kkt-train``."""
    parser = build_parser()
    namespace = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        result = train(TrainConfig(**vars(namespace)))
    except (ValueError, FileNotFoundError, MemoryError) as error:
        parser.error(str(error))
    print(
        f"trained {result.epochs_run} epochs ({result.steps} steps): "
        f"best val loss {result.best_val_loss:.4g}; checkpoints "
        f"{result.last}, {result.best}"
    )


if __name__ == "__main__":
    main()
