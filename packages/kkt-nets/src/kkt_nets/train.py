"""Train a KKT network (MLP or bipartite GNN) on an LP dataset, optionally with JEPA.

``python -m kkt_nets.train --data_dir DIR [--use_bipartite_graphs] [--use_jepa
--jepa_mode {ema,simsiam}] ...`` (console script ``kkt-train``). The loss is the
label-free KKT residual loss (:func:`kkt_nets.models.losses.kkt_loss`), plus
``jepa_weight`` times the JEPA loss in embedding space when ``--use_jepa``;
JEPA alone while ``epoch < --jepa_pretrain_epochs``. In ``ema`` mode a frozen
copy of the model (the target) follows the online model by an exponential
moving average after every optimizer step; ``simsiam`` uses the online model
with a stop-gradient and creates no target.

Every run writes ``OUT/metrics.jsonl`` (one JSON object per logged step or
epoch) and, with ``--wandb_mode online|offline``, logs the same to wandb.
Checkpoints ``OUT/last.pt`` (every epoch) and ``OUT/best.pt`` (best validation
KKT loss) hold the model, optimizer, epoch, step, arguments and, in ``ema``
mode, ``target_model``; ``--resume OUT/last.pt`` restores all of them. Each
epoch's shuffle and JEPA masks are seeded by ``(seed, epoch)``, so a resumed
run continues exactly as an uninterrupted one would.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from copy import deepcopy
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch_geometric
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from kkt_nets.data.datasets import (
    GraphDataset,
    LPDataset,
    pad_collate,
    pad_collate_graphs,
)
from kkt_nets.data.generate_instances import load_split
from kkt_nets.io import atomic_write
from kkt_nets.models.jepa_utils import (
    ema_update,
    jepa_loss_gnn,
    jepa_loss_mlp,
    make_gnn_views,
    make_mlp_views,
)
from kkt_nets.models.losses import kkt_loss
from kkt_nets.models.models import GNNPolicy, KKTNetMLP, nodes_to_padded


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


class TrainingState:
    """Step and epoch counters shared by the loop, logging and checkpoints.

    Parameters
    ----------
    log_every : int
        Log training metrics every ``log_every`` optimizer steps.
    logger : MetricsLogger, optional
    """

    def __init__(self, log_every: int, logger: MetricsLogger | None = None) -> None:
        if log_every < 1:
            raise ValueError(f"log_every must be >= 1, got {log_every}")
        self.log_every = log_every
        self.logger = logger
        self.step = 0
        self.epoch = 0

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
    """``y_pred [B, N + M]`` of a collated batch, for either model path."""
    if isinstance(batch[0], torch_geometric.data.Batch):
        graph, *_, m_sizes, n_sizes = batch
        x_nodes, lam_nodes = model(
            graph.constraint_features,
            graph.edge_index,
            graph.edge_attr,
            graph.variable_features,
        )
        return nodes_to_padded(x_nodes, lam_nodes, m_sizes, n_sizes)
    return model(batch[0])


def to_device(batch: Sequence[Any], device: str) -> list[Any]:
    """Move every tensor (and PyG batch) of a collated batch to ``device``."""
    return [item.to(device) if hasattr(item, "to") else item for item in batch]


def jepa_loss(
    model: torch.nn.Module,
    target_model: torch.nn.Module | None,
    batch: Sequence[Any],
    args: argparse.Namespace,
) -> torch.Tensor:
    """The JEPA loss of a batch: masked context view vs target view."""
    target_ref = target_model if args.jepa_mode == "ema" else model
    if isinstance(batch[0], torch_geometric.data.Batch):
        batch_graph = batch[0]
        ctx, tgt, m_cons, m_vars = make_gnn_views(
            batch_graph, args.jepa_mask_ratio_nodes
        )
        return jepa_loss_gnn(
            model, target_ref, ctx, tgt, m_cons, m_vars, args.jepa_mode
        )
    model_input, A, b, c, _mask_m, _mask_n = batch
    x_ctx, x_tgt = make_mlp_views(model_input, A, b, c, args.jepa_mask_ratio_entries)
    return jepa_loss_mlp(model, target_ref, x_ctx, x_tgt, args.jepa_mode)


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
        If the loss is not finite (the message gives the step).
    """
    model.train()
    total, batches = 0.0, 0
    use_jepa = bool(args is not None and args.use_jepa)
    quiet = bool(args is not None and getattr(args, "quiet", False))
    bar = tqdm(
        loader,
        desc=f"epoch {training_state.get_epoch()}",
        disable=quiet,
        leave=False,
    )
    for raw in bar:
        batch = to_device(raw, device)
        A, b, c, mask_m, mask_n = batch[1:6]
        y_pred = predict(model, batch)
        loss_kkt, terms = kkt_loss(
            y_pred=y_pred,
            A=A,
            b=b,
            c=c,
            mask_m=mask_m,
            mask_n=mask_n,
            primal_weight=primal_weight,
            dual_weight=dual_weight,
            stationarity_weight=stationarity_weight,
            complementary_slackness_weight=complementary_slackness_weight,
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
            raise FloatingPointError(
                f"the training loss is {value} at step "
                f"{training_state.get_step()} (epoch {training_state.get_epoch()}); "
                "lower --lr or check the data"
            )
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


@torch.no_grad()
def evaluate_kkt(
    model: torch.nn.Module, loader: DataLoader, device: str, args: argparse.Namespace
) -> dict[str, float]:
    """Mean KKT loss and terms over ``loader`` (no JEPA)."""
    model.eval()
    sums: dict[str, float] = {}
    batches = 0
    for raw in loader:
        batch = to_device(raw, device)
        A, b, c, mask_m, mask_n = batch[1:6]
        loss, terms = kkt_loss(
            predict(model, batch),
            A,
            b,
            c,
            mask_m,
            mask_n,
            primal_weight=args.primal_weight,
            dual_weight=args.dual_weight,
            stationarity_weight=args.stationarity_weight,
            complementary_slackness_weight=args.complementary_slackness_weight,
        )
        for key, value in {"loss": loss, **terms}.items():
            sums[key] = sums.get(key, 0.0) + float(value)
        batches += 1
    return {k: v / max(batches, 1) for k, v in sums.items()}


def build_parser() -> argparse.ArgumentParser:
    """The training command line."""
    parser = argparse.ArgumentParser(prog="kkt-train", description=__doc__)
    d = parser.add_argument_group("data")
    d.add_argument("--data_dir", type=Path, required=True, help="generate_instances")
    d.add_argument("--out_dir", type=Path, default=Path("runs/kkt"))
    m = parser.add_argument_group("model")
    m.add_argument("--use_bipartite_graphs", action="store_true", help="GNN path")
    m.add_argument("--hidden", type=int, default=256, help="MLP width")
    m.add_argument("--num_layers", type=int, default=3, help="MLP trunk depth")
    m.add_argument("--embedding_size", type=int, default=64, help="GNN width")
    m.add_argument("--gnn_layers", type=int, default=2, help="message passes")
    t = parser.add_argument_group("training")
    t.add_argument("--epochs", type=int, default=30)
    t.add_argument("--batch_size", type=int, default=8)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--weight_decay", type=float, default=0.0)
    t.add_argument("--primal_weight", type=float, default=0.1)
    t.add_argument("--dual_weight", type=float, default=0.1)
    t.add_argument("--stationarity_weight", type=float, default=0.6)
    t.add_argument("--complementary_slackness_weight", type=float, default=0.2)
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
    """Reject settings outside their ranges, naming the flag."""
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
    if args.jepa_pretrain_epochs < 0 or args.jepa_weight < 0:
        raise ValueError("--jepa_pretrain_epochs and --jepa_weight must be >= 0")


def resolve_device(devices: str) -> str:
    """``cpu``, or ``cuda:N`` for an index when CUDA is available (else cpu)."""
    if devices == "cpu" or not torch.cuda.is_available():
        return "cpu"
    return f"cuda:{int(str(devices).split(',')[0])}"


def build_model(args: argparse.Namespace, m: int, n: int) -> torch.nn.Module:
    """The MLP for ``m x n`` inputs, or the GNN (``--use_bipartite_graphs``)."""
    if args.use_bipartite_graphs:
        return GNNPolicy(args)
    return KKTNetMLP(m, n, hidden=args.hidden, num_layers=args.num_layers)


def make_loaders(
    args: argparse.Namespace,
) -> tuple[DataLoader, DataLoader, int, int]:
    """Training and validation loaders and the padded sizes (M, N)."""
    train_lps = [lp for lp, _ in load_split(args.data_dir, "train")]
    val_lps = [lp for lp, _ in load_split(args.data_dir, "val")]
    if not train_lps:
        raise ValueError(f"--data_dir {args.data_dir} has no training instances")
    m = max(lp.m for lp in train_lps + val_lps)
    n = max(lp.n for lp in train_lps + val_lps)
    generator = torch.Generator().manual_seed(args.seed)
    if args.use_bipartite_graphs:
        train_set, val_set = GraphDataset(train_lps), GraphDataset(val_lps)
        collate = pad_collate_graphs
    else:
        train_set = LPDataset(train_lps, max_m=m, max_n=n)
        val_set = LPDataset(val_lps, max_m=m, max_n=n)
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
        If the file is missing, unreadable or lacks the expected entries.
    """
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # torch raises several types for bad files
        raise ValueError(f"cannot read checkpoint {path}: {error}") from error
    missing = {"epoch", "model", "optimizer", "args"} - set(checkpoint)
    if not isinstance(checkpoint, dict) or missing:
        raise ValueError(f"checkpoint {path} is not a kkt-nets checkpoint")
    return checkpoint


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Run the training loop; returns the final metrics.

    Returns
    -------
    dict
        ``best_val_loss``, ``last_train_loss``, ``epochs_run``, ``steps`` and
        the paths of ``last.pt`` / ``best.pt``.
    """
    check_args(args)
    if args.num_threads > 0:
        torch.set_num_threads(args.num_threads)
    torch.manual_seed(args.seed)
    device = resolve_device(args.devices)
    train_loader, val_loader, m, n = make_loaders(args)
    args.max_m, args.max_n = m, n
    model = build_model(args, m, n).to(device)
    target_model = None
    if args.use_jepa and args.jepa_mode == "ema":
        target_model = deepcopy(model)
        for p in target_model.parameters():
            p.requires_grad_(False)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=args.lr, weight_decay=args.weight_decay
    )
    args.out_dir.mkdir(parents=True, exist_ok=True)
    start_epoch, best_val = 0, math.inf
    logger = MetricsLogger(
        args.out_dir, args.wandb_mode, _plain(vars(args)), args.wandb_project
    )
    training_state = TrainingState(args.log_every, logger)
    if args.resume is not None:
        ckpt = load_checkpoint(args.resume)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if args.use_jepa and args.jepa_mode == "ema" and "target_model" in ckpt:
            target_model.load_state_dict(ckpt["target_model"])
        start_epoch = ckpt["epoch"] + 1
        training_state.step = ckpt.get("step", 0)
        best_val = ckpt.get("best_val_loss", math.inf)
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
            training_state.log(
                {
                    "epoch": epoch,
                    "train/epoch_loss": train_loss,
                    "epoch_seconds": time.perf_counter() - started,
                    **{f"val/{k}": v for k, v in val.items()},
                }
            )
            ckpt = {
                "epoch": epoch,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "args": _plain(vars(args)),
                "step": training_state.get_step(),
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
        "last": args.out_dir / "last.pt",
        "best": args.out_dir / "best.pt",
    }


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """Arguments with paths as strings (for checkpoints and wandb)."""
    return {k: str(v) if isinstance(v, Path) else v for k, v in values.items()}


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point ``kkt-train``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = train(args)
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
    print(
        f"trained {result['epochs_run']} epochs ({result['steps']} steps): "
        f"best val KKT loss {result['best_val_loss']:.4g}; checkpoints "
        f"{result['last']}, {result['best']}"
    )


if __name__ == "__main__":
    main()
