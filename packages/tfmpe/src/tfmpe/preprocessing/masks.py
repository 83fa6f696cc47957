"""Attention and padding masks from an independence specification.

Mask value ``True`` means the row token may attend to the column token. Every
pair starts allowed; the rules then apply in the order cross -> local ->
cross_local:

* ``local: [k]`` forbids the whole ``k x k`` block, diagonal included;
* ``cross: [(A, B)]`` forbids rows of ``A`` x columns of ``B`` (one direction);
* ``cross_local: [(A, B, dims)]`` forbids both off-diagonal blocks, then allows
  token ``a <-> b`` again where their event indices along ``dims = (dA, dB)``
  are equal; ``None`` pairs token ``i`` of ``A`` with token ``i`` of ``B``
  (sizes must match).

Masks are boolean (one byte per entry). Rules naming keys that are absent from
the query or key side are skipped, so one specification serves every subset.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from tfmpe.preprocessing.flatten import Slices, check_key

Independence = tuple[
    tuple[str, ...],
    tuple[tuple[str, str], ...],
    tuple[tuple[str, str, tuple[int, int] | None], ...],
]
LayoutKey = tuple[tuple[str, tuple[int, ...]], ...]
RULES = ("local", "cross", "cross_local")
# Masks are N^2 bytes (7.9 MB at N = 2803): keep a few layouts, not many.
MASK_CACHE_SIZE = 16
# The largest dense mask built (1 GiB: N = 32768 tokens).
MASK_BYTES_LIMIT = 2**30


def _names(value: Any, where: str) -> tuple[str, ...]:
    """A list/tuple of key names; a bare string is refused, not iterated."""
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise TypeError(f"{where} must be a list of key names, got {value!r}")
    for name in value:
        if not isinstance(name, str):
            raise TypeError(f"{where} holds {name!r}; key names are strings")
    return tuple(value)


def normalize_independence(independence: Mapping[str, Any] | None) -> Independence:
    """The specification as hashable nested tuples ``(local, cross, cross_local)``.

    Raises
    ------
    ValueError
        For an unknown rule name or a malformed entry.
    """
    if independence is not None and not isinstance(independence, Mapping):
        raise TypeError(
            f"independence must be a dict of rules, got {type(independence).__name__}"
        )
    independence = dict(independence or {})
    unknown = set(independence) - set(RULES)
    if unknown:
        raise ValueError(
            f"independence has unknown rules {sorted(unknown)}; allowed: {RULES}"
        )
    local = _names(independence.get("local", ()), "independence['local']")
    cross = []
    for entry in _entries(independence, "cross"):
        if len(entry) != 2:
            raise ValueError(f"independence['cross'] entries are (A, B), got {entry!r}")
        cross.append(_names(entry, "independence['cross'] entry"))
    cross_local = []
    for entry in _entries(independence, "cross_local"):
        if len(entry) != 3:
            raise ValueError(
                f"independence['cross_local'] entries are (A, B, dims), got {entry!r}"
            )
        a, b, dims = entry
        _names([a, b], "independence['cross_local'] entry")
        if dims is not None:
            if (
                not isinstance(dims, (list, tuple))
                or len(dims) != 2
                or not all(isinstance(d, int) and not isinstance(d, bool) for d in dims)
            ):
                raise ValueError(
                    f"cross_local dims must be (dA, dB) ints or None, got {dims!r}"
                )
            dims = (dims[0], dims[1])
        cross_local.append((a, b, dims))
    return local, tuple(cross), tuple(cross_local)


def _entries(independence: Mapping[str, Any], rule: str) -> list[Any]:
    entries = independence.get(rule, ())
    if isinstance(entries, str) or not isinstance(entries, (list, tuple)):
        raise TypeError(f"independence[{rule!r}] must be a list, got {entries!r}")
    return list(entries)


def independence_keys(independence: Independence) -> set[str]:
    """Every key a normalized specification names."""
    local, cross, cross_local = independence
    return {
        *local,
        *(k for pair in cross for k in pair),
        *(k for a, b, _ in cross_local for k in (a, b)),
    }


def layout_key(slices: Slices) -> LayoutKey:
    """The token layout as a hashable tuple ``((key, event_shape), ...)``."""
    return tuple((k, tuple(s["event_shape"])) for k, s in slices.items())


def _ranges(layout: LayoutKey) -> dict[str, tuple[int, tuple[int, ...]]]:
    """Start of each key in the layout and its event shape."""
    out, start = {}, 0
    for key, event in layout:
        out[key] = (start, event)
        start += math.prod(event)
    return out


def _check_pairing(
    a: str,
    event_a: tuple[int, ...],
    b: str,
    event_b: tuple[int, ...],
    dims: tuple[int, int] | None,
) -> None:
    """Raise ``ValueError`` if ``cross_local`` cannot pair ``a`` with ``b``."""
    if dims is None:
        n_a, n_b = math.prod(event_a), math.prod(event_b)
        if n_a != n_b:
            raise ValueError(
                f"Cannot apply cross_local independence with dims=None: '{a}' has "
                f"{n_a} tokens but '{b}' has {n_b}"
            )
        return
    d_a, d_b = dims
    for key, event, d in ((a, event_a, d_a), (b, event_b, d_b)):
        if not 0 <= d < len(event):
            raise ValueError(
                f"Cannot apply cross_local independence: '{key}' has event shape "
                f"{event} with no dimension {d}"
            )
    if event_a[d_a] != event_b[d_b]:
        raise ValueError(
            f"Cannot apply cross_local independence: dimension {d_a} of '{a}' has "
            f"size {event_a[d_a]} but dimension {d_b} of '{b}' has size "
            f"{event_b[d_b]}"
        )


def check_independence(layout: LayoutKey, independence: Independence) -> None:
    """Check every applicable ``cross_local`` rule against a layout (no mask)."""
    events = dict(layout)
    for a, b, dims in independence[2]:
        if a in events and b in events:
            _check_pairing(a, events[a], b, events[b], dims)


def _pairing(
    a: str,
    event_a: tuple[int, ...],
    b: str,
    event_b: tuple[int, ...],
    dims: tuple[int, int] | None,
) -> np.ndarray:
    """``bool[n_a, n_b]``: which tokens of ``a`` and ``b`` a cross_local pairs."""
    _check_pairing(a, event_a, b, event_b, dims)
    if dims is None:
        return np.eye(math.prod(event_a), dtype=bool)
    d_a, d_b = dims
    index_a = np.indices(event_a).reshape(len(event_a), -1)[d_a]
    index_b = np.indices(event_b).reshape(len(event_b), -1)[d_b]
    return index_a[:, None] == index_b[None, :]


@lru_cache(maxsize=MASK_CACHE_SIZE)
def cached_mask(
    query: LayoutKey, keys: LayoutKey, independence: Independence
) -> np.ndarray:
    """The (read-only, cached) boolean mask of two layouts; see the module doc."""
    q, k = _ranges(query), _ranges(keys)
    n_q = sum(math.prod(e) for _, e in query)
    n_k = sum(math.prod(e) for _, e in keys)
    if n_q * n_k > MASK_BYTES_LIMIT:
        raise ValueError(
            f"an attention mask of {n_q} x {n_k} tokens would take "
            f"{n_q * n_k / 2**30:.1f} GiB (limit {MASK_BYTES_LIMIT / 2**30:.0f} GiB); "
            "use fewer tokens (e.g. batch dimensions instead of event dimensions)"
        )
    mask = np.ones((n_q, n_k), dtype=bool)

    def block(a: str, b: str) -> tuple[slice, slice]:
        (sa, ea), (sb, eb) = q[a], k[b]
        return slice(sa, sa + math.prod(ea)), slice(sb, sb + math.prod(eb))

    local, cross, cross_local = independence
    for a, b in cross:
        if a in q and b in k:
            mask[block(a, b)] = False
    for name in local:
        if name in q and name in k:
            mask[block(name, name)] = False
    for a, b, dims in cross_local:
        flipped = None if dims is None else (dims[1], dims[0])
        for x, y, d in ((a, b, dims), (b, a, flipped)):
            if x in q and y in k:
                mask[block(x, y)] = _pairing(x, q[x][1], y, k[y][1], d)
    mask.setflags(write=False)
    return mask


def _select(slices: Slices, selected_keys: Sequence[str] | None) -> Slices:
    if selected_keys is None:
        return slices
    for key in selected_keys:
        check_key(key, slices)
    return {key: slices[key] for key in selected_keys}


def build_cross_attention_mask(
    query_slices: Slices,
    key_slices: Slices,
    independence: Mapping[str, Any] | None,
) -> Array:
    """Mask between query tokens (rows) and key tokens (columns).

    Parameters
    ----------
    query_slices, key_slices : mapping
        Slice metadata of the two sides; token order is their key order.
    independence : dict
        ``{"local": [...], "cross": [...], "cross_local": [...]}``.

    Returns
    -------
    Array
        ``bool[n_query_tokens, n_key_tokens]``.

    Raises
    ------
    ValueError
        If a cross_local rule's dimensions do not exist or differ in size.
    """
    return jnp.asarray(
        cached_mask(
            layout_key(query_slices),
            layout_key(key_slices),
            normalize_independence(independence),
        )
    )


def build_self_attention_mask(
    slices: Slices,
    independence: Mapping[str, Any] | None,
    selected_keys: Sequence[str] | None = None,
) -> Array:
    """Self-attention mask of all (or the selected) keys' tokens.

    Returns
    -------
    Array
        ``bool[n_tokens, n_tokens]``.
    """
    chosen = _select(slices, selected_keys)
    return build_cross_attention_mask(chosen, chosen, independence)


def build_padding_mask(
    slices: Slices,
    event_shapes: Mapping[str, Any] | None = None,
    selected_keys: Sequence[str] | None = None,
) -> Array:
    """Which tokens are real: every event coordinate below the key's actual size.

    Parameters
    ----------
    slices : mapping
        The (padded) token layout.
    event_shapes : mapping, optional
        Per key, its actual event shape: a tuple of ints, or an integer array
        ``(*sample, event_ndims)`` of per-sample sizes. Keys left out are fully
        real.
    selected_keys : sequence of str, optional
        Only these keys, in this order.

    Returns
    -------
    Array
        ``bool[n_tokens]``, or ``bool[*sample, n_tokens]`` when any size is
        per-sample.

    Raises
    ------
    ValueError
        If an actual shape has the wrong number of dimensions or exceeds the
        padded one.
    """
    chosen = _select(slices, selected_keys)
    event_shapes = dict(event_shapes or {})
    for key in event_shapes:
        check_key(key, slices)
    parts = []
    for key, s in chosen.items():
        event = tuple(s["event_shape"])
        index = np.indices(event).reshape(len(event), -1).T  # (n, ndim)
        if key not in event_shapes:
            parts.append(jnp.ones(index.shape[0], dtype=bool))
            continue
        actual = event_shapes[key]
        if isinstance(actual, tuple | list) and (
            len(actual) != len(event)
            or any(a > e for a, e in zip(actual, event, strict=True))
        ):
            raise ValueError(
                f"event_shapes['{key}'] = {tuple(actual)} does not fit the "
                f"padded event shape {event}"
            )
        actual = jnp.asarray(actual)
        if actual.shape[-1:] != (len(event),):
            raise ValueError(
                f"event_shapes['{key}'] has shape {actual.shape}; its last axis "
                f"must be the {len(event)} event dimensions"
            )
        if not jnp.issubdtype(actual.dtype, jnp.integer):
            raise TypeError(
                f"event_shapes['{key}'] must hold integers, got dtype {actual.dtype}"
            )
        if not isinstance(actual, jax.core.Tracer) and (
            bool(jnp.any(actual < 0)) or bool(jnp.any(actual > jnp.asarray(event)))
        ):
            raise ValueError(
                f"event_shapes['{key}'] must lie in [0, {event}] per dimension, got "
                f"values from {np.asarray(actual).min()} to {np.asarray(actual).max()}"
            )
        parts.append(jnp.all(index < actual[..., None, :], axis=-1))
    shape = jnp.broadcast_shapes(*(p.shape[:-1] for p in parts))
    return jnp.concatenate(
        [jnp.broadcast_to(p, (*shape, p.shape[-1])) for p in parts], axis=-1
    )
