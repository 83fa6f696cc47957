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
from jaxtyping import Array

FUNCTIONAL_PAD = -1e8
PADDING_RATIO_WARNING = 2.0

Slices = Mapping[str, Mapping[str, Any]]


def static_int(value: Any, name: str) -> int:
    """``value`` as a Python int; a traced value means a dynamic shape.

    Raises
    ------
    ValueError
        If ``value`` is a JAX tracer (shapes must be static under ``jit``).
    """
    if isinstance(value, jax.core.Tracer):
        raise ValueError(
            "Dynamic shape detected in JIT context. Ensure all shapes are "
            f"statically known ({name} is traced)."
        )
    return int(value)


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
    if not data:
        raise ValueError("data must hold at least one key")
    batch_ndims = dict(batch_ndims or {})
    unknown = set(batch_ndims) - set(data)
    if unknown:
        raise ValueError(f"batch_ndims names keys not in data: {sorted(unknown)}")
    sample_ndims = static_int(sample_ndims, "sample_ndims")
    sample_shape = None
    parts: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}
    for key, leaf in data.items():
        nb = static_int(batch_ndims.get(key, 1), f"batch_ndims[{key!r}]")
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
        value = jnp.asarray(functional_inputs[key])
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
