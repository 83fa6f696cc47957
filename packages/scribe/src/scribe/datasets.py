"""Count matrices: shipped real samples, simulated NB counts and a sparse atlas.

Real data comes from installed packages (never downloaded).
"""

from __future__ import annotations

import importlib.metadata
import numbers
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

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
    """The sample UMI matrix of celltypist (559 cells x 32,786 genes, MIT license).

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


def _check_int(name: str, value: Any, low: int) -> int:
    """``value`` as an ``int`` of at least ``low`` (bools and floats refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value!r}")
    return int(value)


def _expected_density(
    log_mu: np.ndarray, r: np.ndarray, weights: np.ndarray, log_scale: float
) -> float:
    """Mean ``P(count > 0)`` over cell types, genes and library-size nodes.

    ``log_mu`` is ``[types, genes, nodes]`` (the type means times the library
    factor at Gauss-Hermite nodes), ``weights`` the matching ``[types, 1,
    nodes]`` probabilities, ``r`` the per-gene dispersions.
    """
    mean = np.exp(log_mu + log_scale)
    p_zero = np.exp(-r * np.log1p(mean / r))
    return float(np.sum(weights * (1.0 - p_zero)) / log_mu.shape[1])


def simulate_nb_counts(
    n_cells: int, n_genes: int, p: float = 0.3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Dense negative-binomial counts with one dispersion per gene.

    ``r_g ~ LogNormal(0, 1)`` and ``counts[c, g] ~ NB(r_g, p)`` in numpyro's
    convention (mean ``r p / (1 - p)``), drawn by ``numpy.random.default_rng(
    seed)`` (the same seed, the same counts).

    Parameters
    ----------
    n_cells, n_genes : int
        Shape of the matrix.
    p : float
        The success probability of every count, in (0, 1).
    seed : int
        Seed of the generator.

    Returns
    -------
    counts : ndarray
        ``int64[n_cells, n_genes]``.
    r : ndarray
        ``float64[n_genes]``, the dispersions.
    """
    rng = np.random.default_rng(seed)
    r = rng.lognormal(0.0, 1.0, n_genes)
    # numpy's p is the probability of the other outcome: 1 - numpyro's
    counts = rng.negative_binomial(r, 1.0 - p, size=(n_cells, n_genes))
    return counts, r


def simulate_atlas(
    n_cells: int,
    n_genes: int,
    density: float = 0.1,
    n_types: int = 8,
    seed: int = 0,
    dtype: str = "float32",
    library_sd: float = 0.4,
    chunk_cells: int | None = None,
) -> sp.csr_matrix:
    """A sparse negative-binomial cell-type atlas of UMI counts.

    Each cell belongs to one of ``n_types`` cell types (proportions drawn from a
    ``Dirichlet(2, ..., 2)``). Genes have a baseline log mean ``~ N(0, 1.5^2)``
    and a dispersion ``r_g ~ LogNormal(0.5, 0.5^2)``; in every type a random
    tenth of the genes are markers whose log mean rises by ``~ N(2, 0.5^2)``.
    Every cell has a library-size / capture factor ``~ LogNormal(0,
    library_sd^2)``, and

        counts[c, g] ~ NB(mean = s * l_c * mu[type_c, g], dispersion r_g)

    (variance ``mean + mean^2 / r_g``), where the global scale ``s`` is solved
    (bisection over the exact expected fraction of non-zeros, the library
    factor integrated by Gauss-Hermite quadrature) so that the expected
    density of non-zeros is ``density``. The cells are drawn in chunks and
    stored straight into preallocated CSR arrays, so peak memory stays near
    the size of the result (a dense ``chunk_cells x n_genes`` block at a
    time, never the whole dense matrix).

    Parameters
    ----------
    n_cells, n_genes : int
        Shape of the matrix (``>= 1``).
    density : float
        Target expected fraction of non-zero entries, in ``(0, 0.9]``.
    n_types : int
        Number of cell types (``>= 1``).
    seed : int
        Seed of ``numpy.random.default_rng`` (same arguments, same matrix).
    dtype : {"float32", "int32"}
        Dtype of the stored counts (both hold integers exactly here).
    library_sd : float
        Standard deviation of the log library factor (``>= 0``).
    chunk_cells : int, optional
        Cells per chunk (default: about 2^21 entries per dense chunk). Part of
        the random stream: change it and the draws change.

    Returns
    -------
    scipy.sparse.csr_matrix
        ``[n_cells, n_genes]`` counts with int32 indices.

    Raises
    ------
    TypeError, ValueError
        For a bad argument (the message names it).
    """
    n_cells = _check_int("n_cells", n_cells, 1)
    n_genes = _check_int("n_genes", n_genes, 1)
    n_types = _check_int("n_types", n_types, 1)
    seed = _check_int("seed", seed, 0)
    if isinstance(density, bool) or not isinstance(density, numbers.Real):
        raise TypeError(f"density must be a real number, got {density!r}")
    if not 0.0 < density <= 0.9:
        raise ValueError(f"density must be in (0, 0.9], got {density!r}")
    if dtype not in ("float32", "int32"):
        raise ValueError(f"dtype must be 'float32' or 'int32', got {dtype!r}")
    if not (isinstance(library_sd, numbers.Real) and 0.0 <= library_sd < 5.0):
        raise ValueError(f"library_sd must be in [0, 5), got {library_sd!r}")
    if chunk_cells is None:
        chunk_cells = max(1, (1 << 21) // n_genes)
    chunk_cells = _check_int("chunk_cells", chunk_cells, 1)
    if n_cells * n_genes >= 2**31:
        raise ValueError(
            f"n_cells * n_genes must be < 2^31 (int32 CSR indices), got "
            f"{n_cells} * {n_genes}"
        )

    rng = np.random.default_rng(seed)
    proportions = rng.dirichlet(np.full(n_types, 2.0))
    base = rng.normal(0.0, 1.5, n_genes)
    r = np.exp(rng.normal(0.5, 0.5, n_genes))
    markers = rng.random((n_types, n_genes)) < 0.1
    log_mu = base + markers * rng.normal(2.0, 0.5, (n_types, n_genes))

    # Solve the global scale for the expected density (library factor by
    # probabilists' Gauss-Hermite quadrature, 32 nodes).
    nodes, node_weights = np.polynomial.hermite_e.hermegauss(32)
    node_weights = node_weights / node_weights.sum()
    grid = log_mu[:, :, None] + library_sd * nodes
    weights = proportions[:, None, None] * node_weights
    low, high = -40.0, 40.0
    for _ in range(100):
        middle = 0.5 * (low + high)
        if _expected_density(grid, r[:, None], weights, middle) < density:
            low = middle
        else:
            high = middle
    log_mu += 0.5 * (low + high)

    # Preallocate the CSR arrays for the expected non-zeros (+ 5 sd margin).
    expected = density * n_cells * n_genes
    capacity = int(expected + 5.0 * np.sqrt(expected) + n_genes + 16)
    data = np.empty(capacity, dtype=dtype)
    indices = np.empty(capacity, dtype=np.int32)
    indptr = np.zeros(n_cells + 1, dtype=np.int64)
    nnz = 0
    for start in range(0, n_cells, chunk_cells):
        stop = min(start + chunk_cells, n_cells)
        types = rng.choice(n_types, size=stop - start, p=proportions)
        library = np.exp(rng.normal(0.0, library_sd, stop - start))
        mean = library[:, None] * np.exp(log_mu[types])
        chunk = rng.negative_binomial(r, r / (r + mean))  # numpy: mean n(1-p)/p
        del mean
        rows, cols = np.nonzero(chunk)
        if nnz + rows.size > capacity:  # rare: grow by half
            capacity = max(nnz + rows.size, capacity + capacity // 2)
            data = np.resize(data, capacity)
            indices = np.resize(indices, capacity)
        data[nnz : nnz + rows.size] = chunk[rows, cols]
        indices[nnz : nnz + rows.size] = cols
        np.cumsum(
            np.bincount(rows, minlength=stop - start), out=indptr[start + 1 : stop + 1]
        )
        indptr[start + 1 : stop + 1] += nnz
        nnz += rows.size
    data.resize(nnz, refcheck=False)  # shrink in place, no copy
    indices.resize(nnz, refcheck=False)
    if nnz < 2**31:
        indptr = indptr.astype(np.int32)
    return sp.csr_matrix((data, indices, indptr), shape=(n_cells, n_genes), copy=False)
