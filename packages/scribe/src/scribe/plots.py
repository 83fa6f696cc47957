"""Figures of a fit: the loss curve and posterior predictive checks.

Every figure is written whole (:func:`scribe.io.atomic_write`), its format
taken from the file's suffix.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from scribe.io import atomic_write
from scribe.results import ScribeResults

PPC_CELLS = 2_000  # cells of a posterior predictive check (a random subset)


def save_figure(figure: Any, path: str | os.PathLike) -> Path:
    """Save a matplotlib figure to ``path`` whole, then close it."""
    fmt = Path(path).suffix.lstrip(".") or "png"
    try:
        return atomic_write(
            path,
            lambda tmp: figure.savefig(tmp, dpi=120, bbox_inches="tight", format=fmt),
        )
    finally:
        plt.close(figure)


def _title(results: ScribeResults) -> str:
    config = results.config
    mixture = f", {config.n_components} components" if config.n_components else ""
    return f"{config.model} / {config.parameterization} / {config.guide}{mixture}"


def plot_loss(results: ScribeResults, path: str | os.PathLike) -> Path:
    """The loss curve: negative ELBO per step above its minimum, log-log."""
    losses = results.loss_history
    excess = losses - losses.min() + 1.0  # log scale down to the best step
    figure, axis = plt.subplots(figsize=(6, 3.5))
    steps = np.arange(1, losses.size + 1)
    axis.plot(steps, excess, lw=0.6, alpha=0.5, label="per step")
    window = max(1, losses.size // 50)
    smooth = np.convolve(excess, np.ones(window) / window, mode="valid")
    axis.plot(steps[window - 1 :], smooth, lw=1.5, label=f"mean of {window}")
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("SVI step")
    axis.set_ylabel(f"negative ELBO - {losses.min():.6g} + 1")
    axis.set_title(_title(results))
    axis.legend(frameon=False)
    return save_figure(figure, path)


def ppc_cells(n_cells: int, seed: int = 0, max_cells: int = PPC_CELLS) -> np.ndarray:
    """A sorted random subset of at most ``max_cells`` cells for a check."""
    if n_cells <= max_cells:
        return np.arange(n_cells)
    return np.sort(np.random.default_rng(seed).choice(n_cells, max_cells, False))


def plot_posterior_predictive(
    results: ScribeResults,
    path: str | os.PathLike,
    n_samples: int = 5,
    seed: int = 0,
) -> Path:
    """Data against posterior predictive replicates, on a subset of cells.

    Left: the distribution of per-cell library sizes (empirical CDFs of the
    data and of each replicate). Right: the per-gene mean-variance relation
    (data and replicates pooled), with the Poisson line ``var = mean``.

    Raises
    ------
    ValueError
        If the counts are not attached to ``results``.
    """
    if results.data is None:
        raise ValueError("plot_posterior_predictive needs the counts attached")
    cells = ppc_cells(results.n_cells, seed)
    observed = results.data.rows(cells)
    replicates = results.posterior_predictive(n_samples, seed, cells=cells)
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, replicate in enumerate(replicates):
        sizes = np.sort(replicate.sum(axis=1))
        left.step(
            sizes,
            np.linspace(0, 1, sizes.size),
            color="tab:orange",
            alpha=0.5,
            lw=1,
            label="replicates" if i == 0 else None,
        )
    sizes = np.sort(observed.sum(axis=1))
    left.step(sizes, np.linspace(0, 1, sizes.size), color="k", lw=1.5, label="data")
    left.set_xscale("log")
    left.set_xlabel("library size (total counts per cell)")
    left.set_ylabel("fraction of cells")
    left.legend(frameon=False)
    rep_mean, rep_var = replicates.mean(axis=1), replicates.var(axis=1)
    right.scatter(
        rep_mean.ravel(),
        rep_var.ravel(),
        s=3,
        alpha=0.3,
        c="tab:orange",
        label="replicates",
    )
    obs_mean, obs_var = observed.mean(axis=0), observed.var(axis=0)
    right.scatter(obs_mean, obs_var, s=4, c="k", label="data")
    positive = obs_mean[obs_mean > 0]
    if positive.size:
        line = np.geomspace(positive.min(), positive.max(), 50)
        right.plot(line, line, "--", c="gray", lw=1, label="Poisson")
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("gene mean")
    right.set_ylabel("gene variance")
    right.legend(frameon=False)
    figure.suptitle(
        f"posterior predictive check, {cells.size} cells: {_title(results)}"
    )
    return save_figure(figure, path)
