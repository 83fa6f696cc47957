"""Real count matrices shipped by installed packages (never downloaded)."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np

CELLTYPIST_SAMPLE = "celltypist/data/samples/sample_cell_by_gene.csv"


def celltypist_sample_path() -> Path:
    """Path of celltypist's 559-cell UMI sample inside its installed wheel.

    Found through ``importlib.metadata`` rather than ``importlib.resources``:
    the latter imports ``celltypist``, which needs scanpy, and the data needs
    only ``pip install --no-deps celltypist``.

    Raises
    ------
    FileNotFoundError
        If celltypist is not installed or lacks the file.
    """
    try:
        dist = importlib.metadata.distribution("celltypist")
    except importlib.metadata.PackageNotFoundError as error:
        raise FileNotFoundError(
            "celltypist is not installed: pip install --no-deps celltypist"
        ) from error
    path = Path(str(dist.locate_file(CELLTYPIST_SAMPLE)))
    if not path.is_file():
        raise FileNotFoundError(f"celltypist has no {CELLTYPIST_SAMPLE} at {path}")
    return path


def load_celltypist_sample(n_genes: int | None = None) -> tuple[np.ndarray, list[str]]:
    """The sample UMI matrix of celltypist (559 cells x 32,786 genes, MIT licence).

    Parameters
    ----------
    n_genes : int, optional
        Keep the ``n_genes`` genes with the most counts (in that order).

    Returns
    -------
    counts : numpy array
        ``[cells, genes]`` float32 integer counts.
    genes : list of str
        Gene names of the columns.
    """
    with open(celltypist_sample_path()) as handle:
        genes = handle.readline().rstrip("\n").split(",")[1:]
        rows = [
            np.array(line.rstrip("\n").split(",")[1:], dtype=np.float32)
            for line in handle
        ]
    counts = np.stack(rows)
    if n_genes is not None:
        if not 1 <= n_genes <= counts.shape[1]:
            raise ValueError(
                f"n_genes must be in [1, {counts.shape[1]}], got {n_genes!r}"
            )
        keep = np.argsort(-counts.sum(axis=0), kind="stable")[:n_genes]
        counts, genes = counts[:, keep], [genes[i] for i in keep]
    return counts, genes
