"""Count matrices in: AnnData, NumPy or SciPy sparse, checked and kept sparse.

:func:`as_count_data` turns what a user has (an ``AnnData`` and a layer name, a
NumPy array, a SciPy CSR/CSC matrix) into a :class:`CountData`: the counts as
float32 on the host, CSR when they came sparse, with the cell and gene names.
A minibatch is densified on the device from the CSR arrays
(:func:`densify_rows`), so an atlas never exists as a dense matrix; full-batch
fitting densifies once, after checking that it fits in memory.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

FLOAT32_EXACT = 2**24  # the largest integer float32 holds exactly (and all below)
MEMORY_FRACTION = 0.8  # of the available memory a dense matrix may take
GIB = 2**30


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (``MemAvailable``), if known."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits_in_memory(n_bytes: int, what: str, advice: str) -> None:
    """Refuse an allocation of ``n_bytes`` that the machine cannot hold.

    Raises
    ------
    MemoryError
        Naming ``what``, the estimate, the memory available and ``advice``.
    """
    free = available_memory()
    if free is not None and n_bytes > MEMORY_FRACTION * free:
        raise MemoryError(
            f"{what} needs {n_bytes / GIB:.2f} GiB but {free / GIB:.2f} GiB of "
            f"memory are available; {advice}"
        )


@dataclass(frozen=True)
class CountData:
    """A checked ``[cells, genes]`` count matrix on the host, with names.

    Attributes
    ----------
    matrix : numpy array or scipy.sparse.csr_matrix
        float32 non-negative integer counts (CSR when the input was sparse).
    cell_names, gene_names : numpy arrays of str
        ``obs_names`` / ``var_names`` of an AnnData, else ``"0"``, ``"1"``, ...
    """

    matrix: np.ndarray | sp.csr_matrix
    cell_names: np.ndarray
    gene_names: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_cells, n_genes)``."""
        return self.matrix.shape

    @property
    def n_cells(self) -> int:
        """Number of cells (rows)."""
        return self.matrix.shape[0]

    @property
    def n_genes(self) -> int:
        """Number of genes (columns)."""
        return self.matrix.shape[1]

    @property
    def is_sparse(self) -> bool:
        """Whether the counts are held as CSR."""
        return sp.issparse(self.matrix)

    def dense(self) -> np.ndarray:
        """The whole matrix, dense float32 (checked against available memory).

        Raises
        ------
        MemoryError
            If the dense matrix would not fit, with the estimate.
        """
        if not self.is_sparse:
            return self.matrix
        n_bytes = 4 * self.n_cells * self.n_genes
        check_fits_in_memory(
            n_bytes,
            f"densifying {self.n_cells} cells x {self.n_genes} genes (float32)",
            "fit in minibatches instead (batch_size=...)",
        )
        return self.matrix.toarray()

    def rows(self, index: Any) -> np.ndarray:
        """Dense float32 rows ``index`` (any NumPy index of cells)."""
        block = self.matrix[np.asarray(index)]
        return block.toarray() if sp.issparse(block) else np.asarray(block)

    def library_sizes(self) -> np.ndarray:
        """Total count of every cell."""
        return np.asarray(self.matrix.sum(axis=1)).ravel()


class DeviceCSR(NamedTuple):
    """CSR arrays of a count matrix on the device (a pytree for ``jit``).

    ``width`` (the most non-zeros of any row) is a Python int, static under
    ``jit``: :func:`densify_rows` gathers ``width`` entries per batch row.
    """

    values: jax.Array
    columns: jax.Array
    indptr: jax.Array
    n_genes: int
    width: int


def to_device(data: CountData, dense: bool) -> jax.Array | DeviceCSR:
    """The counts on the device: dense, or CSR arrays for :func:`densify_rows`."""
    if dense or not data.is_sparse:
        return jnp.asarray(data.dense())
    matrix = data.matrix
    return DeviceCSR(
        values=jnp.asarray(matrix.data, jnp.float32),
        columns=jnp.asarray(matrix.indices, jnp.int32),
        indptr=jnp.asarray(matrix.indptr, jnp.int32),
        n_genes=matrix.shape[1],
        width=max(1, int(np.diff(matrix.indptr).max())),
    )


def densify_rows(counts: jax.Array | DeviceCSR, index: jax.Array) -> jax.Array:
    """Dense rows ``index`` of device counts (dense or :class:`DeviceCSR`).

    For CSR, every row gathers ``width`` entries from its start, masks those
    past its end, and scatters them into a zero ``[len(index), n_genes]`` block:
    the same float32 values as the dense rows, bit for bit.
    """
    if not isinstance(counts, DeviceCSR):
        return jnp.take(counts, index, axis=0)
    start = counts.indptr[index]
    length = counts.indptr[index + 1] - start
    offset = jnp.arange(counts.width)
    valid = offset[None, :] < length[:, None]
    position = jnp.where(valid, start[:, None] + offset[None, :], 0)
    values = jnp.where(valid, counts.values[position], 0.0)
    columns = counts.columns[position]
    rows = jnp.broadcast_to(jnp.arange(index.shape[0])[:, None], columns.shape)
    block = jnp.zeros((index.shape[0], counts.n_genes), jnp.float32)
    return block.at[rows, columns].add(values)


def _is_anndata(data: Any) -> bool:
    return type(data).__name__ == "AnnData" and hasattr(data, "obs_names")


def _matrix_of(data: Any, layer: str | None, name: str) -> tuple[Any, Any, Any]:
    """The matrix and the names held by ``data`` (an AnnData or a matrix)."""
    if not _is_anndata(data):
        if layer is not None:
            raise ValueError(f"layer={layer!r} needs an AnnData as {name}")
        return data, None, None
    if layer is None:
        matrix = data.X
        if matrix is None:
            raise ValueError(f"{name}.X is None: name a layer (layer=...)")
    else:
        if not isinstance(layer, str):
            raise TypeError(f"layer must be a str, got {type(layer).__name__}")
        if layer not in data.layers:
            raise ValueError(
                f"layer {layer!r} is not in {name}.layers; layers: "
                f"{sorted(data.layers.keys())}"
            )
        matrix = data.layers[layer]
    if hasattr(matrix, "to_memory"):  # a backed AnnData's sparse dataset
        matrix = matrix.to_memory()
    return matrix, data.obs_names, data.var_names


def _check_values(
    values: np.ndarray,
    locate: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    cells: np.ndarray,
    genes: np.ndarray,
    name: str,
) -> None:
    """Refuse non-finite, negative, non-integer and float32-inexact counts.

    ``values`` are the stored entries (all of a dense matrix, the non-zeros of
    a sparse one); ``locate(positions)`` gives their rows and columns.
    """
    finite = np.isfinite(values)
    checks = [
        (~finite, "non-finite (NaN or inf) count(s)"),
        (finite & (values < 0), "negative count(s)"),
        (finite & (values != np.round(values)), "non-integer count(s)"),
        (
            finite & (values > FLOAT32_EXACT),
            f"count(s) above 2**24 = {FLOAT32_EXACT} (float32, in which the "
            "counts are fitted, would round them)",
        ),
    ]
    for bad, what in checks:
        count = int(np.count_nonzero(bad))
        if count:
            rows, cols = locate(np.flatnonzero(bad)[:3])
            where = ", ".join(
                f"(cell {str(cells[i])!r}, gene {str(genes[j])!r})"
                for i, j in zip(rows, cols, strict=True)
            )
            raise ValueError(
                f"{name} holds {count} {what}, at {where}"
                + (" ..." if count > 3 else "")
            )


def _names(names: Any, size: int) -> np.ndarray:
    if names is None:
        return np.arange(size).astype(str)
    return np.asarray(names).astype(str)


def as_count_data(data: Any, layer: str | None = None, name: str = "data") -> CountData:
    """Check a count matrix and hold it as float32 (CSR when sparse), with names.

    Parameters
    ----------
    data : AnnData, numpy array or scipy sparse matrix
        ``[cells, genes]`` non-negative integer counts. An AnnData gives its
        ``X`` (or ``layers[layer]``), ``obs_names`` and ``var_names``.
    layer : str, optional
        The AnnData layer holding raw counts (scanpy keeps them in
        ``layers["counts"]``).
    name : str
        The argument's name in error messages.

    Returns
    -------
    CountData

    Raises
    ------
    TypeError
        For a type other than the above (a list, a DataFrame...).
    ValueError
        For a wrong shape, a non-numeric dtype, or non-finite, negative,
        non-integer or float32-inexact (> 2**24) counts: the message gives how
        many and the first cells and genes.
    """
    matrix, cells, genes = _matrix_of(data, layer, name)
    if isinstance(matrix, jax.Array):
        matrix = np.asarray(matrix)
    if not (isinstance(matrix, np.ndarray) or sp.issparse(matrix)):
        raise TypeError(
            f"{name} must be an AnnData, a numpy array or a scipy sparse matrix, "
            f"got {type(matrix).__name__}"
        )
    if matrix.ndim != 2 or 0 in matrix.shape:
        raise ValueError(
            f"{name} must be a non-empty 2-D [cells, genes] matrix, got shape "
            f"{matrix.shape}"
        )
    if not (np.issubdtype(matrix.dtype, np.integer) or matrix.dtype.kind == "f"):
        raise ValueError(
            f"{name} must hold integer or float counts, got {matrix.dtype}"
        )
    cells, genes = _names(cells, matrix.shape[0]), _names(genes, matrix.shape[1])
    if sp.issparse(matrix):
        matrix = sp.csr_matrix(matrix)  # a copy for CSR input too: ours to change
        matrix.sum_duplicates()
        indptr, indices = matrix.indptr, matrix.indices
        _check_values(
            matrix.data,
            lambda at: (np.searchsorted(indptr, at, side="right") - 1, indices[at]),
            cells,
            genes,
            name,
        )
        matrix = matrix.astype(np.float32)
        matrix.eliminate_zeros()
    else:
        n_genes = matrix.shape[1]
        _check_values(
            matrix.ravel(), lambda at: np.divmod(at, n_genes), cells, genes, name
        )
        matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    return CountData(matrix=matrix, cell_names=cells, gene_names=genes)
