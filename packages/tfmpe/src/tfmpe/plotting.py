"""Figures of posteriors: a pair plot of samples against a reference."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from tfmpe.io import write_atomically


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
        PNG written atomically.
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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    out = write_atomically(
        Path(path), lambda tmp: fig.savefig(tmp, dpi=100, format="png")
    )
    plt.close(fig)
    return out
