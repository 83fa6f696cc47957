"""Plots of a fit, written atomically to image files."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from jax_smm.persistence import atomic_write


def pyplot() -> ModuleType:
    """``matplotlib.pyplot`` on the non-interactive Agg backend.

    Every figure the package draws starts here, so plotting works without a
    display (CI, clusters).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | os.PathLike) -> Path:
    """Write a matplotlib figure atomically, then close it.

    Every figure the package writes goes through here.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path : path-like
        Destination; its suffix (``.png``, ``.pdf``, ...) is the format.

    Returns
    -------
    pathlib.Path
        ``path``, written through ``persistence.atomic_write`` (a failing write
        leaves nothing behind). The figure is closed even if writing fails.

    Raises
    ------
    ValueError
        If ``path`` has no suffix to take the format from.
    """
    import matplotlib.pyplot as plt

    path = Path(path)
    try:
        if not path.suffix:
            raise ValueError(
                f"path {str(path)!r} has no suffix to take the format from"
            )
        return atomic_write(
            path,
            lambda tmp: fig.savefig(
                tmp, dpi=120, bbox_inches="tight", format=path.suffix[1:]
            ),
        )
    finally:
        plt.close(fig)


def plot_history(
    history: Mapping[str, Any] | Any, path: str | os.PathLike, title: str = ""
) -> Path:
    """Plot max and mean moment error against iteration to a PNG file.

    Parameters
    ----------
    history : FitHistory or dict
        Anything with ``iteration``, ``max_error`` and ``mean_error`` items.
    path : path-like
        The PNG file to write (atomically); not a folder.
    title : str, optional

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    if Path(path).is_dir():
        raise ValueError(
            f"path {str(path)!r} is a folder; give a file name such as "
            f"{str(Path(path) / 'history.png')!r}"
        )
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.semilogy(history["iteration"], history["max_error"], label="max |error|")
    ax.semilogy(history["iteration"], history["mean_error"], label="mean |error|")
    ax.set_xlabel("iteration")
    ax.set_ylabel("moment error")
    ax.set_title(title or "stochastic moment matching")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return save_figure(fig, path)
