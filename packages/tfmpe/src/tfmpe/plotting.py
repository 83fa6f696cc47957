"""Figures: one way to save them, and a pair plot of samples against a reference."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from tfmpe.io import atomic_write

DPI = 120


def pyplot() -> ModuleType:
    """``matplotlib.pyplot`` on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | Path) -> Path:
    """Write ``fig`` to ``path`` atomically, then close it.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path : str or Path
        Destination; its suffix (``.png``, ``.pdf``, ...) is the format.

    Returns
    -------
    Path
        ``path``. The figure is closed even if writing fails.

    Raises
    ------
    ValueError
        If ``path`` has no suffix to take the format from.
    """
    path = Path(path)
    try:
        if not path.suffix:
            raise ValueError(f"{path} has no suffix to take the figure format from")
        return atomic_write(
            path,
            lambda tmp: fig.savefig(
                tmp, dpi=DPI, bbox_inches="tight", format=path.suffix[1:]
            ),
        )
    finally:
        pyplot().close(fig)


def pair_plot(
    samples: Mapping[str, np.ndarray],
    path: str | Path,
    reference: Mapping[str, np.ndarray] | None = None,
    labels: tuple[str, str] = ("estimator", "reference"),
    title: str | None = None,
    max_points: int = 2000,
) -> Path:
    """Marginal histograms and pairwise scatter of named 1-D sample arrays.

    Parameters
    ----------
    samples : mapping of str to array
        ``name -> (n,)`` samples of each coordinate to draw.
    path : path
        Figure written by :func:`save_figure` (its suffix is the format).
    reference : mapping of str to array, optional
        Samples of the same names from a reference posterior (exact or MCMC),
        drawn in another color.
    labels : (str, str)
        Legend of the two sets.
    title : str, optional
    max_points : int
        Scatter points per panel.

    Returns
    -------
    Path
    """
    plt = pyplot()
    names = list(samples)
    d = len(names)
    fig, axes = plt.subplots(d, d, figsize=(2.2 * d + 1, 2.2 * d + 1), squeeze=False)
    sets = [(samples, "tab:blue", labels[0])]
    if reference is not None:
        sets.append((reference, "tab:orange", labels[1]))
    for i, row in enumerate(names):
        for j, col in enumerate(names):
            ax = axes[i, j]
            if j > i:
                ax.axis("off")
                continue
            for values, color, label in sets:
                x = np.asarray(values[col]).ravel()
                if i == j:
                    ax.hist(
                        x,
                        bins=40,
                        density=True,
                        histtype="step",
                        color=color,
                        label=label,
                    )
                else:
                    y = np.asarray(values[row]).ravel()
                    ax.scatter(
                        x[:max_points], y[:max_points], s=2, alpha=0.3, color=color
                    )
            if i == d - 1:
                ax.set_xlabel(col)
            if j == 0 and i > 0:
                ax.set_ylabel(row)
            ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=7, loc="upper left")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)
