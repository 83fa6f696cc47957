"""Argument checks shared by the package: strict types, seeds, keys and memory.

Every check raises ``ValueError`` naming the argument and what is allowed, and
never coerces: ``2.7`` is not an integer, ``"0.1"`` is not a number and
``True`` is neither.
"""

from __future__ import annotations

import math
import os
from numbers import Real
from typing import Any

import jax
import numpy as np

MAX_SEED = 2**32 - 1  # jax.random.key keeps the low 32 bits of larger seeds
INT32_MAX = 2**31 - 1


def is_integer(value: Any) -> bool:
    """Whether ``value`` is a Python or NumPy integer (``bool`` excluded)."""
    return isinstance(value, (int, np.integer)) and not isinstance(
        value, (bool, np.bool_)
    )


def check_int(
    name: str, value: Any, minimum: int | None = None, maximum: int | None = None
) -> int:
    """Return ``value`` as an ``int`` if it is an integer in ``[minimum, maximum]``.

    Raises
    ------
    ValueError
        Naming ``name`` and the allowed range if ``value`` is not an integer
        (floats, strings and bools are refused, not converted) or is out of range.
    """
    low = "-inf" if minimum is None else minimum
    high = "inf" if maximum is None else maximum
    allowed = f"an integer in [{low}, {high}]"
    if not is_integer(value):
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    value = int(value)
    if (minimum is not None and value < minimum) or (
        maximum is not None and value > maximum
    ):
        raise ValueError(f"{name} must be {allowed}, got {value}")
    return value


def check_real(
    name: str,
    value: Any,
    minimum: float | None = None,
    exclusive_minimum: bool = False,
) -> float:
    """Return ``value`` as a finite ``float`` if it is a real number above ``minimum``.

    Raises
    ------
    ValueError
        If ``value`` is not a real number (strings and bools are refused), is not
        finite, or is below (or, with ``exclusive_minimum``, at) ``minimum``.
    """
    bound = (
        "" if minimum is None else f" {'>' if exclusive_minimum else '>='} {minimum}"
    )
    allowed = f"a finite real number{bound}"
    if not isinstance(value, (Real, np.floating, np.integer)) or isinstance(
        value, (bool, np.bool_)
    ):
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    value = float(value)
    too_low = minimum is not None and (
        value <= minimum if exclusive_minimum else value < minimum
    )
    if not math.isfinite(value) or too_low:
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return value


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of the strings ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def as_key(name: str, value: Any) -> jax.Array:
    """A JAX PRNG key from a key or a seed.

    Parameters
    ----------
    name : str
        The argument's name, for the error message.
    value : jax.Array or int
        A typed key (``jax.random.key(seed)``), a raw ``uint32[2]`` key
        (``jax.random.PRNGKey(seed)``), or an integer seed in ``[0, 2**32 - 1]``.

    Returns
    -------
    jax.Array
        The key (typed keys and raw keys are returned unchanged).
    """
    if is_integer(value):
        return jax.random.key(check_int(name, value, 0, MAX_SEED))
    if isinstance(value, jax.Array):
        typed = jax.dtypes.issubdtype(value.dtype, jax.dtypes.prng_key)
        if (typed and value.shape == ()) or (
            value.dtype == np.uint32 and value.shape == (2,)
        ):
            return value
    raise ValueError(
        f"{name} must be a JAX PRNG key (jax.random.key(seed)) or an integer "
        f"seed in [0, {MAX_SEED}], got {value!r}"
    )


def available_memory() -> int:
    """Bytes a computation may use: the accelerator's limit, else physical RAM."""
    stats = jax.devices()[0].memory_stats() or {}
    if "bytes_limit" in stats:
        return int(stats["bytes_limit"])
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def format_bytes(nbytes: float) -> str:
    """``nbytes`` in the largest binary unit that keeps it >= 1 (e.g. ``3.2 GiB``)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if nbytes < 1024 or unit == "PiB":
            return f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    raise AssertionError("unreachable")


def check_fits_in_memory(what: str, nbytes: float) -> None:
    """Refuse a computation whose estimated size exceeds :func:`available_memory`.

    Parameters
    ----------
    what : str
        What needs the memory, naming the argument that sets it (e.g.
        ``"num_chains = 1000000000 (about 800 B per chain)"``).
    nbytes : float
        The estimate, in bytes.
    """
    limit = available_memory()
    if nbytes > limit:
        raise ValueError(
            f"{what} needs about {format_bytes(nbytes)}, more than the "
            f"{format_bytes(limit)} of memory of {jax.devices()[0].platform}; "
            "use a smaller value"
        )


FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_float32_interval(where: str, low: float, high: float) -> None:
    """Refuse bounds ``low < high`` that float32 states cannot represent.

    Continuous states are ``float32``: a bound beyond ``+-3.4e38`` becomes
    infinite, a width beyond it overflows, and bounds closer than float32
    resolution collapse, each of which would turn states into NaN.
    """
    if max(abs(low), abs(high)) > FLOAT32_MAX:
        raise ValueError(
            f"{where}: low and high must be finite in float32 (|x| <= "
            f"{FLOAT32_MAX:.4g}), got low={low!r}, high={high!r}"
        )
    with np.errstate(over="ignore"):
        width = np.float32(high) - np.float32(low)
    if not (np.isfinite(width) and width > 0):
        raise ValueError(
            f"{where}: the width high - low must be positive and finite in float32, "
            f"got low={low!r}, high={high!r} (width {float(width)!r} in float32)"
        )


def as_float_array(name: str, value: Any, dtype: Any = np.float64) -> np.ndarray:
    """A new ``dtype`` array from numeric ``value``; strings and objects are refused.

    Parameters
    ----------
    name : str
        The argument's name, for the error message.
    value : array_like
        Integers or floats (NumPy, JAX or nested sequences).
    dtype : numpy dtype
        Floating dtype of the copy.
    """
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a numeric array: {err}") from None
    if array.dtype.kind not in "iuf":
        raise ValueError(
            f"{name} must be a numeric (integer or float) array, got dtype "
            f"{array.dtype}"
        )
    return np.array(array, dtype=dtype)
