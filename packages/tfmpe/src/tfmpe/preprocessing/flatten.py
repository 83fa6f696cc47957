"""Flatten pytrees of structured parameters into one token array, and back.

A leaf has shape ``(*sample, *event, *batch)``. Its event dimensions become
tokens (row-major order) and its batch dimensions become each token's feature
vector, right-padded to ``max_batch_size``; keys follow one another in key
order. The slice metadata of key ``k`` is ``{"offset", "event_shape",
"batch_shape"}``: its tokens are ``offset .. offset + prod(event_shape) - 1`` and
its features the first ``prod(batch_shape)`` columns.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

FUNCTIONAL_PAD = -1e8
PADDING_RATIO_WARNING = 2.0
# Token arrays are float32. Integers beyond 2^24 and floats beyond float32's
# range cannot be stored exactly and are refused rather than rounded.
EXACT_INTEGER_LIMIT = 2**24
FLOAT32_MAX = float(np.finfo(np.float32).max)
# The largest token array (data or functional inputs) built, in bytes.
TOKEN_BYTES_LIMIT = 4 * 2**30

Slices = Mapping[str, Mapping[str, Any]]


def static_int(value: Any, name: str) -> int:
    """``value`` as a Python int; a traced value means a dynamic shape.

    Raises
    ------
    ValueError
        If ``value`` is a JAX tracer (shapes must be static under ``jit``).
    TypeError
        If ``value`` is not an integer (``1.7``, ``2.0``, ``True``, a string).
    """
    if isinstance(value, jax.core.Tracer):
        raise ValueError(
            "Dynamic shape detected in JIT context. Ensure all shapes are "
            f"statically known ({name} is traced)."
        )
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r}")
    return int(value)


def positive_count(value: Any, name: str) -> int:
    """``value`` as an int >= 1.

    Raises
    ------
    TypeError, ValueError
        Naming ``name`` for a non-integer or a count below 1.
    """
    value = static_int(value, name)
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


def check_token_bytes(n_bytes: int, name: str, value: Any) -> None:
    """Refuse a token array larger than ``TOKEN_BYTES_LIMIT``.

    Raises
    ------
    ValueError
        Naming the argument responsible and the memory it would take.
    """
    if n_bytes > TOKEN_BYTES_LIMIT:
        raise ValueError(
            f"{name}={value} would build a token array of {n_bytes / 2**30:.1f} GiB "
            f"(limit {TOKEN_BYTES_LIMIT / 2**30:.0f} GiB)"
        )


def as_token_values(key: str, leaf: Any, what: str = "data") -> Array:
    """``leaf`` as float32, refusing values float32 cannot hold.

    Concrete arrays are checked: integers beyond ``EXACT_INTEGER_LIMIT`` in
    magnitude and finite floats beyond float32's range raise instead of
    silently rounding or overflowing to inf. Traced arrays are cast.

    Raises
    ------
    TypeError
        If ``leaf`` is not an array (a list, a scalar) or not numeric.
    ValueError
        For a value float32 cannot represent.
    """
    if not isinstance(leaf, (np.ndarray, jax.Array)):
        raise TypeError(
            f"{what}[{key!r}] must be a NumPy or JAX array, got {type(leaf).__name__}"
        )
    kind = np.dtype(leaf.dtype).kind
    if kind not in "biuf":
        raise TypeError(f"{what}[{key!r}] has non-numeric dtype {leaf.dtype}")
    exact = kind == "b" or (kind == "f" and np.dtype(leaf.dtype).itemsize <= 4)
    if not exact and not isinstance(leaf, jax.core.Tracer) and leaf.size:
        if kind in "iu":  # extremes in the array's own dtype: no overflow
            largest = max(abs(int(leaf.max())), abs(int(leaf.min())))
            if largest > EXACT_INTEGER_LIMIT:
                raise ValueError(
                    f"{what}[{key!r}] holds integers beyond 2^24, which float32 "
                    "token arrays cannot store exactly; rescale them"
                )
        else:
            values = np.asarray(leaf)
            largest = float(np.max(np.abs(np.where(np.isfinite(values), values, 0.0))))
            if largest > FLOAT32_MAX:
                raise ValueError(
                    f"{what}[{key!r}] holds values beyond float32's range "
                    f"(max |x| = {largest:.3g}); rescale them"
                )
    return jnp.asarray(leaf, dtype=jnp.float32)


def check_data_keys(data: Any, name: str = "data") -> None:
    """Refuse anything but a non-empty mapping with string keys.

    Raises
    ------
    TypeError
        For a non-mapping or a non-string key (``1`` and ``"1"`` would
        collide; ``None`` is not a name).
    """
    if not isinstance(data, Mapping):
        raise TypeError(f"{name} must be a dict of arrays, got {type(data).__name__}")
    for key in data:
        if not isinstance(key, str):
            raise TypeError(
                f"{name} keys must be strings, got {key!r} ({type(key).__name__})"
            )


def num_tokens(slices: Slices) -> int:
    """Number of tokens the slices describe."""
    return sum(math.prod(s["event_shape"]) for s in slices.values())


def check_key(key: str, slices: Slices) -> None:
    """Raise ``KeyError`` naming the available keys if ``key`` is unknown."""
    if key not in slices:
        raise KeyError(f"Key '{key}' not found. Available keys: {list(slices)}")


def flatten_pytree(
    data: Mapping[str, Array],
    sample_ndims: int = 1,
    batch_ndims: Mapping[str, int] | None = None,
    pad_value: float = 0.0,
    max_batch_size: int | None = None,
) -> tuple[Array, dict[str, dict[str, Any]]]:
    """Flatten every key of ``data`` into one token array.

    Parameters
    ----------
    data : mapping of str to Array
        Leaves shaped ``(*sample, *event, *batch)``; key order is token order.
    sample_ndims : int
        Leading sample dimensions, shared by every leaf.
    batch_ndims : mapping of str to int, optional
        Trailing batch dimensions per key (default 1 for every key).
    pad_value : float
        Fill of the feature columns beyond a key's batch size.
    max_batch_size : int, optional
        Feature width; defaults to the largest batch size.

    Returns
    -------
    flat_array : Array
        ``(*sample, n_tokens, max_batch_size)``.
    slices : dict
        ``{key: {"offset", "event_shape", "batch_shape"}}``.

    Raises
    ------
    ValueError
        For leaves with too few dimensions, mismatched sample shapes, or a
        ``max_batch_size`` smaller than a key's batch size.

    Warns
    -----
    UserWarning
        If the largest batch size is more than twice the smallest.
    """
    check_data_keys(data)
    if not data:
        raise ValueError("data must hold at least one key")
    if batch_ndims is not None and not isinstance(batch_ndims, Mapping):
        raise TypeError(
            "batch_ndims must be a dict of key -> int, got "
            f"{type(batch_ndims).__name__}"
        )
    batch_ndims = dict(batch_ndims or {})
    unknown = set(batch_ndims) - set(data)
    if unknown:
        raise ValueError(f"batch_ndims names keys not in data: {sorted(unknown)}")
    sample_ndims = static_int(sample_ndims, "sample_ndims")
    if sample_ndims < 0:
        raise ValueError(
            f"sample_ndims must be >= 0 (the number of leading sample axes), got "
            f"{sample_ndims}"
        )
    data = {key: as_token_values(key, leaf) for key, leaf in data.items()}
    sample_shape = None
    parts: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}
    for key, leaf in data.items():
        nb = static_int(batch_ndims.get(key, 1), f"batch_ndims[{key!r}]")
        if nb < 0:
            raise ValueError(f"batch_ndims[{key!r}] must be >= 0, got {nb}")
        shape = tuple(leaf.shape)
        if len(shape) < sample_ndims + nb:
            raise ValueError(
                f"data[{key!r}] has shape {shape}: fewer than sample_ndims + "
                f"batch_ndims = {sample_ndims} + {nb} dimensions"
            )
        if sample_shape is None:
            sample_shape = shape[:sample_ndims]
        elif shape[:sample_ndims] != sample_shape:
            raise ValueError(
                f"data[{key!r}] has sample shape {shape[:sample_ndims]}, "
                f"expected {sample_shape} like the other keys"
            )
        parts[key] = (shape[sample_ndims : len(shape) - nb], shape[len(shape) - nb :])
    sizes = [math.prod(b) for _, b in parts.values()]
    width = max(sizes)
    if max_batch_size is not None:
        max_batch_size = static_int(max_batch_size, "max_batch_size")
        if max_batch_size < width:
            raise ValueError(
                f"max_batch_size={max_batch_size} is smaller than the largest "
                f"batch size {width}"
            )
        width = max_batch_size
    n_all = sum(math.prod(e) for e, _ in parts.values()) * math.prod(sample_shape)
    check_token_bytes(4 * n_all * width, "max_batch_size", width)
    if width / max(min(sizes), 1) > PADDING_RATIO_WARNING:
        warnings.warn(
            f"Warning: Batch size padding ratio is {width / max(min(sizes), 1):.1f}x, "
            "consider restructuring data",
            stacklevel=2,
        )
    blocks, slices, offset = [], {}, 0
    for key, (event, batch) in parts.items():
        n = math.prod(event)
        block = jnp.reshape(data[key], (*sample_shape, n, math.prod(batch)))
        pad = [(0, 0)] * (sample_ndims + 1) + [(0, width - block.shape[-1])]
        blocks.append(jnp.pad(block, pad, constant_values=pad_value))
        slices[key] = {"offset": offset, "event_shape": event, "batch_shape": batch}
        offset += n
    return jnp.concatenate(blocks, axis=-2), slices


def decode_pytree(
    flat_array: Array,
    slices: Slices,
    sample_shape: Sequence[int] | None = None,
    keys: Sequence[str] | None = None,
) -> dict[str, Array]:
    """Rebuild the pytree from a flat token array.

    Parameters
    ----------
    flat_array : Array
        ``(*sample, n_tokens, max_batch_size)``, laid out as ``slices`` says.
    slices : mapping
        Slice metadata of every key in ``flat_array``.
    sample_shape : sequence of int, optional
        Leading sample shape; defaults to ``flat_array.shape[:-2]``.
    keys : sequence of str, optional
        Keys to rebuild (default: all, in slice order).

    Returns
    -------
    dict of str to Array
        Leaves shaped ``(*sample, *event, *batch)`` (feature padding dropped).

    Raises
    ------
    ValueError
        If the slices describe another number of tokens than the array has.
    KeyError
        For a key not in ``slices``.
    """
    expected = num_tokens(slices)
    if flat_array.ndim < 2:
        raise ValueError(
            f"flat_array must be (*sample, n_tokens, features), got shape "
            f"{tuple(flat_array.shape)}"
        )
    if flat_array.shape[-1] < 1:
        raise ValueError(
            f"flat_array has shape {tuple(flat_array.shape)}: no feature columns to "
            "decode"
        )
    if flat_array.shape[-2] != expected:
        got = flat_array.shape[-2]
        raise ValueError(
            f"Slice metadata specifies {expected} tokens but flat array has "
            f"{got} tokens"
        )
    if sample_shape is None:
        sample_shape = flat_array.shape[:-2]
    sample_shape = tuple(static_int(s, "sample_shape") for s in sample_shape)
    out = {}
    for key in slices if keys is None else keys:
        check_key(key, slices)
        s = slices[key]
        n, b = math.prod(s["event_shape"]), math.prod(s["batch_shape"])
        block = flat_array[..., s["offset"] : s["offset"] + n, :b]
        out[key] = jnp.reshape(
            block, (*sample_shape, *s["event_shape"], *s["batch_shape"])
        )
    return out


def update_flat_array(
    flat_array: Array, slices: Slices, key: str, new_value: Array
) -> Array:
    """Write ``new_value`` over key ``key``'s tokens of ``flat_array``.

    Parameters
    ----------
    flat_array : Array
        ``(*sample, n_tokens, max_batch_size)``.
    slices : mapping
    key : str
    new_value : Array
        Shaped ``(*sample, *event, *batch)`` like the key's original leaf.

    Returns
    -------
    Array
        A new flat array; padding columns keep their values.

    Raises
    ------
    KeyError
        For an unknown key (the message lists the available keys).
    ValueError
        If ``new_value`` does not have the key's shape.
    """
    check_key(key, slices)
    s = slices[key]
    sample_shape = flat_array.shape[:-2]
    expected = (*sample_shape, *s["event_shape"], *s["batch_shape"])
    if tuple(new_value.shape) != expected:
        raise ValueError(
            f"new value for '{key}' has shape {tuple(new_value.shape)}, "
            f"expected {expected}"
        )
    n, b = math.prod(s["event_shape"]), math.prod(s["batch_shape"])
    block = jnp.reshape(new_value, (*sample_shape, n, b)).astype(flat_array.dtype)
    return flat_array.at[..., s["offset"] : s["offset"] + n, :b].set(block)


def flatten_functional_inputs(
    functional_inputs: Mapping[str, Array] | None,
    slices: Slices,
    sample_ndims: int = 1,
    pad_value: float = FUNCTIONAL_PAD,
    sample_shape: Sequence[int] | None = None,
    max_batch_size: int | None = None,
) -> Array | None:
    """Functional inputs aligned with the tokens, sentinel-padded.

    Parameters
    ----------
    functional_inputs : mapping of str to Array, or None
        Per key, an array shaped ``(*sample, *event, *batch)`` or, shared by
        every sample, ``(*event, *batch)``, with the key's event shape; its batch
        part may be narrower than the key's. Keys without inputs get
        ``pad_value`` everywhere.
    slices : mapping
        The token layout.
    sample_ndims : int
    pad_value : float
        The sentinel (``-1e8``).
    sample_shape : sequence of int, optional
        Needed when no input carries the sample dimensions.
    max_batch_size : int, optional
        Feature width (default: the widest key of ``slices``).

    Returns
    -------
    Array or None
        ``(*sample, n_tokens, max_batch_size)``, or None for no inputs.

    Raises
    ------
    ValueError
        If an input's shape does not match its key's token structure.
    KeyError
        For a key not in ``slices``.
    """
    if functional_inputs is None:
        return None
    width = max(math.prod(s["batch_shape"]) for s in slices.values())
    if max_batch_size is not None:
        width = max(width, static_int(max_batch_size, "max_batch_size"))
    check_data_keys(functional_inputs, "functional_inputs")
    for key in functional_inputs:
        check_key(key, slices)
    if sample_shape is None:
        for key, value in functional_inputs.items():
            ndim_event = len(slices[key]["event_shape"])
            if value.ndim > ndim_event + len(slices[key]["batch_shape"]):
                sample_shape = value.shape[:sample_ndims]
                break
        else:
            sample_shape = ()
    sample_shape = tuple(sample_shape)
    blocks = []
    for key, s in slices.items():
        n = math.prod(s["event_shape"])
        if key not in functional_inputs:
            blocks.append(jnp.full((*sample_shape, n, width), pad_value))
            continue
        value = as_token_values(key, functional_inputs[key], "functional_inputs")
        event = tuple(s["event_shape"])
        shape = tuple(value.shape)
        lead = len(sample_shape)
        if shape[:lead] == sample_shape and shape[lead : lead + len(event)] == event:
            tail = shape[lead + len(event) :]
        elif shape[: len(event)] == event:  # shared by every sample
            tail = shape[len(event) :]
            value = jnp.broadcast_to(value, (*sample_shape, *shape))
        else:
            raise ValueError(
                f"Functional input '{key}' has shape {shape} but expected to "
                f"match token shape {(*sample_shape, *event)}"
            )
        features = math.prod(tail)
        if features > width:
            raise ValueError(
                f"Functional input '{key}' has {features} features per token, "
                f"more than max_batch_size={width}"
            )
        block = jnp.reshape(value, (*sample_shape, n, features)).astype(jnp.float32)
        pad = [(0, 0)] * (len(sample_shape) + 1) + [(0, width - features)]
        blocks.append(jnp.pad(block, pad, constant_values=pad_value))
    return jnp.concatenate(blocks, axis=-2)
