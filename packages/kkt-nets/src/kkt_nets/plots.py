"""Writing figures: one :func:`save_figure` for every figure of the package."""

from __future__ import annotations

import os
from pathlib import Path

from matplotlib.figure import Figure

from kkt_nets.io import atomic_write


def save_figure(fig: Figure, path: str | os.PathLike) -> Path:
    """Save ``fig`` atomically in the format of ``path``'s suffix, then close it.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path : str or PathLike
        Destination (``.png``, ``.pdf``, ``.svg``, ...); its folder is
        created if missing.

    Returns
    -------
    Path
        ``path``.
    """
    import matplotlib.pyplot as plt

    target = Path(path)
    try:
        return atomic_write(
            target,
            lambda tmp: fig.savefig(
                tmp, dpi=120, bbox_inches="tight", format=target.suffix[1:]
            ),
        )
    finally:
        plt.close(fig)
