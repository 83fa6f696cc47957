"""The settings of a training run as one frozen, validated record.

``kkt-train`` parses its flags once into a :class:`TrainConfig`; every
library function below the command line (the training loop, model building,
inference, evaluation) reads that record, never the parser's namespace.
Checkpoints store it as a plain dict (:meth:`TrainConfig.to_dict`) and
:meth:`TrainConfig.from_dict` rebuilds it.

Construction normalizes and validates: ``model`` and ``use_bipartite_graphs``
are made consistent (``--use-bipartite-graphs`` is the spec's spelling of
``--model gnn``), ``loss`` defaults to ``kkt`` with ``bounds_as_rows`` and to
``certificate`` otherwise, integers given for floats become floats and strings
given for paths become paths; any other type or a value out of range raises
``ValueError`` naming the flag.
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from kkt_nets.cli import flag

CHOICES = {
    "model": ("gnn", "mlp"),
    "lr_schedule": ("constant", "cosine"),
    "loss": ("kkt", "certificate"),
    "penalty_schedule": ("constant", "adaptive"),
    "wandb_mode": ("online", "offline", "disabled"),
    "jepa_mode": ("ema", "simsiam"),
}
"""The allowed values of the settings that take one of a few words."""
NON_NEGATIVE = (
    "primal_weight",
    "dual_weight",
    "stationarity_weight",
    "complementary_slackness_weight",
    "gap_weight",
    "penalty",
    "supervised_weight",
    "weight_decay",
)
"""Loss weights and the like: finite and >= 0."""
AT_LEAST_ONE = (
    "epochs",
    "batch_size",
    "hidden",
    "num_layers",
    "embedding_size",
    "gnn_layers",
    "log_every",
)
"""Counts and sizes that must be >= 1."""


@dataclass(frozen=True)
class TrainConfig:
    """Settings of a ``kkt-train`` run (one field per flag, same names).

    Parameters
    ----------
    data_dir : Path
        A ``kkt-generate`` dataset.
    out_dir : Path
        Run folder (metrics, checkpoints).
    bounds_as_rows : bool
        The spec's form: bounds as rows, ``x`` free.
    model : {"gnn", "mlp"}
    use_bipartite_graphs : bool
        The spec's flag for the GNN; kept equal to ``model == "gnn"``.
    hidden, num_layers : int
        MLP width and trunk depth.
    embedding_size, gnn_layers : int
        GNN width and rounds of message passing.
    epochs, batch_size : int
    lr : float
    lr_schedule : {"constant", "cosine"}
    weight_decay : float
    loss : {"kkt", "certificate"}, optional
        ``None`` resolves to ``kkt`` with ``bounds_as_rows``, else ``certificate``.
    primal_weight, dual_weight : float
        The spec's :func:`~kkt_nets.models.losses.kkt_loss` weights (with the
        next two).
    stationarity_weight, complementary_slackness_weight : float
    gap_weight, penalty : float
        Certificate loss: weights of the gap and of the residuals.
    penalty_schedule : {"constant", "adaptive"}
    penalty_growth, penalty_max : float
        Adaptive schedule: growth factor (>= 1) and cap (>= ``penalty``).
    supervised_weight : float
        Certificate loss: weight of the distance to HiGHS's labels.
    seed : int
    devices : str
        ``cpu`` or a CUDA index.
    num_threads : int
        CPU threads for torch (0: torch's default).
    log_every : int
        Optimizer steps between logged training metrics.
    resume : Path, optional
        A ``last.pt`` to continue.
    overwrite : bool
        Start afresh in an ``out_dir`` that holds a run.
    time_budget_s : float, optional
        Stop after the epoch in which this many seconds have passed.
    wandb_mode : {"online", "offline", "disabled"}
    wandb_project : str
    quiet : bool
        No progress bars.
    use_jepa : bool
    jepa_mode : {"ema", "simsiam"}
    jepa_weight : float
    jepa_pretrain_epochs : int
    jepa_mask_ratio_entries, jepa_mask_ratio_nodes : float
        Masked fractions of the MLP's entries and of the GNN's nodes, in [0, 1).
    ema_momentum : float
        In [0, 1].
    max_m, max_n : int, optional
        The padded LP size of the training data; set by the training loop
        (the MLP's input size), ``None`` before.
    """

    data_dir: Path
    out_dir: Path = Path("runs/kkt")
    bounds_as_rows: bool = False
    model: str = "gnn"
    use_bipartite_graphs: bool = False
    hidden: int = 256
    num_layers: int = 3
    embedding_size: int = 64
    gnn_layers: int = 4
    epochs: int = 30
    batch_size: int = 16
    lr: float = 1e-3
    lr_schedule: str = "cosine"
    weight_decay: float = 0.0
    loss: str | None = None
    primal_weight: float = 0.1
    dual_weight: float = 0.1
    stationarity_weight: float = 0.6
    complementary_slackness_weight: float = 0.2
    gap_weight: float = 1.0
    penalty: float = 3.0
    penalty_schedule: str = "constant"
    penalty_growth: float = 2.0
    penalty_max: float = 1000.0
    supervised_weight: float = 0.0
    seed: int = 0
    devices: str = "cpu"
    num_threads: int = 0
    log_every: int = 10
    resume: Path | None = None
    overwrite: bool = False
    time_budget_s: float | None = None
    wandb_mode: str = "disabled"
    wandb_project: str = "kkt-nets"
    quiet: bool = False
    use_jepa: bool = False
    jepa_mode: str = "ema"
    jepa_weight: float = 0.2
    jepa_pretrain_epochs: int = 0
    jepa_mask_ratio_entries: float = 0.5
    jepa_mask_ratio_nodes: float = 0.3
    ema_momentum: float = 0.996
    max_m: int | None = None
    max_n: int | None = None

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for field in fields(self):
            value = _coerce(field.name, getattr(self, field.name), hints[field.name])
            object.__setattr__(self, field.name, value)
        if self.use_bipartite_graphs and self.model == "mlp":
            raise ValueError(
                f"{flag('use_bipartite_graphs')} selects the GNN: drop --model mlp"
            )
        if self.model not in CHOICES["model"]:
            raise ValueError(f"--model must be one of {CHOICES['model']}")
        object.__setattr__(self, "use_bipartite_graphs", self.model == "gnn")
        if self.loss is None:
            resolved = "kkt" if self.bounds_as_rows else "certificate"
            object.__setattr__(self, "loss", resolved)
        self._check_ranges()

    def _check_ranges(self) -> None:
        """Raise ``ValueError`` naming the flag of the first value out of range."""
        for name, allowed in CHOICES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(
                    f"{flag(name)} must be one of {allowed}, got {value!r}"
                )
        for name in AT_LEAST_ONE:
            if getattr(self, name) < 1:
                raise ValueError(
                    f"{flag(name)} must be >= 1, got {getattr(self, name)}"
                )
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"--lr must be positive, got {self.lr}")
        for name in ("jepa_mask_ratio_entries", "jepa_mask_ratio_nodes"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(
                    f"{flag(name)} must be in [0, 1), got {getattr(self, name)}"
                )
        if not 0.0 <= self.ema_momentum <= 1.0:
            raise ValueError(
                f"{flag('ema_momentum')} must be in [0, 1], got {self.ema_momentum}"
            )
        if self.num_threads < 0:
            raise ValueError(
                f"{flag('num_threads')} must be >= 0, got {self.num_threads}"
            )
        if self.time_budget_s is not None and not self.time_budget_s > 0:
            raise ValueError(
                f"{flag('time_budget_s')} must be positive, got {self.time_budget_s}"
            )
        if self.jepa_pretrain_epochs < 0 or not self.jepa_weight >= 0:
            raise ValueError(
                f"{flag('jepa_pretrain_epochs')} and {flag('jepa_weight')} must be >= 0"
            )
        for name in NON_NEGATIVE:
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(
                    f"{flag(name)} must be a finite number >= 0, got {value}"
                )
        if not (self.penalty_growth >= 1 and self.penalty_max >= self.penalty):
            raise ValueError(
                f"{flag('penalty_growth')} must be >= 1 and {flag('penalty_max')} "
                "must be >= --penalty"
            )
        if self.supervised_weight > 0 and self.loss != "certificate":
            raise ValueError(f"{flag('supervised_weight')} needs --loss certificate")
        for name in ("max_m", "max_n"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")

    def to_dict(self) -> dict[str, Any]:
        """Plain values (paths as strings), for checkpoints, wandb and JSON."""
        return {field.name: _plain(getattr(self, field.name)) for field in fields(self)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Rebuild a config from :meth:`to_dict`'s output.

        Raises
        ------
        ValueError
            If ``values`` holds names that are not settings, or values of the
            wrong type or out of range.
        """
        unknown = set(values) - {field.name for field in fields(cls)}
        if unknown:
            raise ValueError(f"unknown training settings: {sorted(unknown)}")
        return cls(**values)


def _plain(value: Any) -> Any:
    """``value`` with a path as a string."""
    return str(value) if isinstance(value, Path) else value


def _coerce(name: str, value: Any, hint: Any) -> Any:
    """``value`` checked against the annotation ``hint`` (int -> float, str -> Path).

    Raises
    ------
    ValueError
        If ``value`` has none of the annotated types (the message names the flag).
    """
    allowed = (
        typing.get_args(hint)
        if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
        else (hint,)
    )
    if value is None and type(None) in allowed:
        return None
    if Path in allowed and isinstance(value, str | Path):
        return Path(value)
    if isinstance(value, bool):  # a bool is an int to Python: only for bools
        if bool in allowed:
            return value
    elif int in allowed and isinstance(value, int):
        return value
    elif float in allowed and isinstance(value, int | float):
        return float(value)
    elif str in allowed and isinstance(value, str):
        return value
    expected = " or ".join(getattr(kind, "__name__", str(kind)) for kind in allowed)
    raise ValueError(f"{flag(name)} must be {expected}, got {value!r}")
