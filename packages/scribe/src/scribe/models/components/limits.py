"""Size checks run before a guide allocates its parameters.

A guide's dense parameters (a covariance factor, a full-rank ``scale_tril``, a
network's weights) are allocated when SVI first traces the guide; an absurd
size (a rank far above the dimension, a ``hidden_dims`` of a billion units)
would otherwise be allocated until the process is killed or XLA fails with an
internal error. These helpers refuse such sizes with a message naming the
argument, the allowed range and the estimated memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import numpy as np

FLOAT_BYTES = 4  # float32
# a parameter, its gradient and Adam's two moments live at once during SVI
SVI_COPIES = 4
MAX_PARAMETER_BYTES = 4 * 2**30


def format_bytes(n_bytes: float) -> str:
    """``n_bytes`` in the largest binary unit below it (``"1.5 GiB"``)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n_bytes < 1024 or unit == "PiB":
            return f"{n_bytes:,.1f} {unit}"
        n_bytes /= 1024
    raise AssertionError("unreachable")


def svi_bytes(n_floats: int) -> int:
    """Memory of ``n_floats`` float32 parameters, gradients and Adam moments."""
    return FLOAT_BYTES * SVI_COPIES * int(n_floats)


def positive_int(name: str, value: Any) -> int:
    """``value`` as a positive ``int``.

    Raises
    ------
    TypeError
        If it is not an integer (a bool, float or string).
    ValueError
        If it is below 1.
    """
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be a positive int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return int(value)


def positive_dims(name: str, value: Any) -> tuple[int, ...]:
    """``value`` as a tuple of positive ints (layer widths).

    Raises
    ------
    TypeError
        If it is a string, a scalar, or holds a non-integer.
    ValueError
        If a width is below 1.
    """
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise TypeError(
            f"{name} must be a sequence of positive ints such as (64,), got {value!r}"
        )
    for width in value:
        if isinstance(width, bool) or not isinstance(width, int | np.integer):
            raise TypeError(f"{name} must hold positive ints, got {value!r}")
        if width < 1:
            raise ValueError(f"{name} must hold positive ints, got {value!r}")
    return tuple(int(w) for w in value)


def dense_parameter_count(n_in: int, hidden_dims: Sequence[int], n_out: int) -> int:
    """Weights and biases of a multilayer perceptron ``n_in -> hidden -> n_out``."""
    widths = [n_in, *hidden_dims, n_out]
    return sum((a + 1) * b for a, b in pairwise(widths))


def check_parameter_memory(n_floats: int, what: str, advice: str) -> None:
    """Refuse ``n_floats`` parameters whose SVI memory exceeds the limit.

    Raises
    ------
    ValueError
        Naming ``what`` (the arguments that set the size), the estimate, the
        limit and ``advice``.
    """
    needed = svi_bytes(n_floats)
    if needed > MAX_PARAMETER_BYTES:
        raise ValueError(
            f"{what} needs about {n_floats:,} parameters, "
            f"{format_bytes(needed)} with their gradients and Adam's moments "
            f"(limit {format_bytes(MAX_PARAMETER_BYTES)}): {advice}"
        )


def check_rank(name: str, rank: int, size: int, batch: int = 1) -> None:
    """A low-rank covariance factor's rank must be in ``[1, size]``.

    Parameters
    ----------
    name : str
        The argument that set the rank (``"guide_rank"``).
    rank, size : int
        Requested rank and the dimension of the normal.
    batch : int
        Independent normals sharing the rank (mixture components).

    Raises
    ------
    ValueError
        Naming ``name``, the allowed range and the size of the factor.
    """
    if not 1 <= rank <= size:
        n_floats = batch * size * rank
        raise ValueError(
            f"{name} must be in [1, {size}] (the dimension of the low-rank "
            f"normal), got {rank}: its covariance factor would hold "
            f"{n_floats:,} floats ({format_bytes(svi_bytes(n_floats))} during SVI)"
        )


def check_full_rank(name: str, size: int) -> None:
    """Refuse a full-rank normal whose ``scale_tril`` would not fit.

    Raises
    ------
    ValueError
        Naming ``name``, the dimension and the estimate; it advises low rank.
    """
    check_parameter_memory(
        size * size,
        f"{name}='full_rank' over {size:,} unconstrained values (a "
        f"{size:,} x {size:,} scale_tril)",
        f"use {name}='low_rank'",
    )
