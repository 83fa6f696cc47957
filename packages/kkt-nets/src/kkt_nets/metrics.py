"""A run's metrics: one logger that writes ``metrics.jsonl``, and its readers.

:class:`MetricsLogger` appends one JSON object per logged step or epoch to
``OUT/metrics.jsonl`` and forwards the same values to wandb when it is
enabled; :func:`read_metrics` reads every record back and
:func:`read_curve` the per-epoch curves.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

METRICS_FILE = "metrics.jsonl"
"""Name of the metrics file in a run folder."""


class MetricsLogger:
    """Logs to ``metrics.jsonl`` always and to wandb when it is enabled.

    Parameters
    ----------
    out_dir : Path
        Run folder (``metrics.jsonl`` is appended to).
    wandb_mode : {"online", "offline", "disabled"}
    config : dict
        Run settings, for wandb.
    project : str
        wandb project.
    """

    def __init__(
        self, out_dir: Path, wandb_mode: str, config: dict[str, Any], project: str
    ) -> None:
        self.path = out_dir / METRICS_FILE
        self.run = None
        if wandb_mode != "disabled":
            try:
                import wandb
            except ImportError as error:
                raise RuntimeError(
                    f"--wandb-mode {wandb_mode} needs wandb: pip install "
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


def read_metrics(metrics: Path) -> list[dict[str, float]]:
    """Every record of a ``metrics.jsonl`` written by :class:`MetricsLogger`.

    Parameters
    ----------
    metrics : Path
        The file, or a run folder holding it.

    Returns
    -------
    list of dict
        One per logged step or epoch, in the order logged.

    Raises
    ------
    ValueError
        If a line is not JSON (the message names the file and line).
    """
    path = metrics / METRICS_FILE if metrics.is_dir() else metrics
    records = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}:{number} is not JSON: {error}") from error
    return records


def read_curve(metrics: Path) -> dict[str, list[float]]:
    """Per-epoch curves from a run's ``metrics.jsonl`` (see :func:`read_metrics`).

    Parameters
    ----------
    metrics : Path
        The file, or a run folder holding it.

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
    for record in read_metrics(metrics):
        if "val/loss" not in record:
            continue
        elapsed += record["epoch_seconds"]
        curve["epoch"].append(int(record["epoch"]))
        curve["seconds"].append(elapsed)
        curve["train_loss"].append(record["train/epoch_loss"])
        curve["val_loss"].append(record["val/loss"])
        curve["penalty"].append(record.get("penalty", math.nan))
    return curve
