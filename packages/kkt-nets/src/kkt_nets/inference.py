"""Trained networks at inference: load a checkpoint, predict for a list of LPs.

Shared by the evaluation (:mod:`kkt_nets.evaluate`) and the solver
(:mod:`kkt_nets.solver`). Predictions come back in the form of the LPs given
(bounds on the columns), whatever form the network was trained in: a network
trained with ``--bounds-as-rows`` sees each LP with its bounds as rows, and
only the duals of the LP's own rows are kept (the bound duals follow from
them in closed form).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from kkt_nets.config import TrainConfig
from kkt_nets.data.datasets import (
    GraphDataset,
    LPDataset,
    pad_collate,
    pad_collate_graphs,
)
from kkt_nets.data.lp import LP, bounds_to_rows
from kkt_nets.train import (
    build_model,
    checkpoint_config,
    load_checkpoint,
    predict,
    to_device,
)


def load_trained(
    path: str | Path, device: str = "cpu"
) -> tuple[torch.nn.Module, TrainConfig]:
    """The model of a checkpoint (in eval mode, on ``device``) and its settings.

    Raises
    ------
    ValueError
        If the checkpoint cannot be read or does not match its own settings
        (the message names the file).
    """
    checkpoint = load_checkpoint(Path(path))
    config = checkpoint_config(checkpoint)
    model = build_model(config, config.max_m, config.max_n)
    try:
        model.load_state_dict(checkpoint["model"])
    except RuntimeError as error:
        raise ValueError(
            f"checkpoint {path} does not fit its model: {error}"
        ) from error
    return model.to(device).eval(), config


def check_takes(config: TrainConfig, lps: Sequence[LP], checkpoint: str) -> None:
    """Refuse LPs the checkpoint's model cannot take (the MLP's fixed size).

    Raises
    ------
    ValueError
        Naming the checkpoint, its size and the first LP that does not fit.
    """
    if config.use_bipartite_graphs:
        return
    for lp in lps:
        m = lp.m + (np.isfinite(lp.lb).sum() + np.isfinite(lp.ub).sum()) * bool(
            config.bounds_as_rows
        )
        if m > config.max_m or lp.n > config.max_n:
            raise ValueError(
                f"checkpoint {checkpoint} is an MLP for LPs of at most "
                f"{config.max_m} rows x {config.max_n} variables; LP {lp.name!r} has "
                f"{m} x {lp.n}: use a GNN checkpoint (any size) or none (cold PDHG)"
            )


@torch.no_grad()
def predict_all(
    model: torch.nn.Module,
    lps: Sequence[LP],
    config: TrainConfig,
    batch_size: int = 64,
    device: str = "cpu",
) -> tuple[list[np.ndarray], list[np.ndarray], float]:
    """Primal and dual predictions per instance, and the inference seconds.

    Parameters
    ----------
    model : torch.nn.Module
        From :func:`load_trained`.
    lps : sequence of LP
        Scaled LPs, bounds on the columns.
    config : TrainConfig
        The checkpoint's settings (reads ``use_bipartite_graphs``,
        ``bounds_as_rows`` and, for the MLP, ``max_m`` and ``max_n``).
    batch_size : int
    device : str

    Returns
    -------
    xs, lams : list of ndarray
        ``[n]`` and ``[m]`` per LP (in the LP's scaled units).
    seconds : float
        Collation, transfer and forward passes of all batches (synchronized).
    """
    network_lps = (
        [bounds_to_rows(lp)[0] for lp in lps] if config.bounds_as_rows else lps
    )
    if config.use_bipartite_graphs:  # a forward pass needs no dense A
        dataset, collate = GraphDataset(network_lps, dense=False), pad_collate_graphs
    else:
        dataset = LPDataset(network_lps, max_m=config.max_m, max_n=config.max_n)
        collate = pad_collate
    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=collate)
    outputs = []
    started = time.perf_counter()
    for batch in loader:
        batch = to_device(batch, device)
        n_pad = (
            int(batch[-1].max()) if config.use_bipartite_graphs else batch.c.shape[1]
        )
        outputs.append((predict(model, batch).cpu(), n_pad))
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    xs: list[np.ndarray] = []
    lams: list[np.ndarray] = []
    for y_pred, n_pad in outputs:
        for row in y_pred.double().numpy():
            lp = lps[len(xs)]
            xs.append(row[: lp.n])
            lams.append(row[n_pad : n_pad + lp.m])
    return xs, lams, seconds
