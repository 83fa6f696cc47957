"""``Tokens``: one container for token data, masks and metadata.

All keys of a pytree live in one flat array ``(*sample, n_tokens,
max_batch_size)``. The metadata (slices, labels, key order, independence) is
static and hashable, so ``Tokens`` is a pytree whose leaves are only the
per-sample arrays (data, padding mask, functional inputs): jitting a function of
``Tokens`` traces once per layout, and ``vmap`` over the sample axis works. The
self-attention mask is rebuilt from the static metadata (and cached), never
stored per instance.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from tfmpe.preprocessing.flatten import (
    FUNCTIONAL_PAD,
    Slices,
    check_key,
    decode_pytree,
    flatten_functional_inputs,
    flatten_pytree,
    update_flat_array,
)
from tfmpe.preprocessing.masks import (
    Independence,
    build_padding_mask,
    cached_mask,
    check_independence,
    independence_keys,
    layout_key,
    normalize_independence,
)

SliceRecord = tuple[str, int, tuple[int, ...], tuple[int, ...]]


def _records(slices: Slices) -> tuple[SliceRecord, ...]:
    return tuple(
        (k, int(s["offset"]), tuple(s["event_shape"]), tuple(s["batch_shape"]))
        for k, s in slices.items()
    )


def _slices(records: Sequence[SliceRecord], reindex: bool = False) -> dict:
    out, offset = {}, 0
    for key, start, event, batch in records:
        out[key] = {
            "offset": offset if reindex else start,
            "event_shape": event,
            "batch_shape": batch,
        }
        offset += math.prod(event)
    return out


def stable_label(key: str) -> int:
    """The default label of ``key``: CRC-32 of its UTF-8 name, in ``[0, 2^31)``.

    The same key gets the same label in every ``Tokens``, whatever other keys
    it is built with, in every session and on every machine.
    """
    return zlib.crc32(key.encode("utf-8")) & 0x7FFFFFFF


def default_label_map(keys: Sequence[str]) -> dict[str, int]:
    """``{key: stable_label(key)}``; refuses the (unlikely) collision.

    Raises
    ------
    ValueError
        If two keys share a label (pass an explicit ``label_map``).
    """
    labels = {key: stable_label(key) for key in keys}
    if len(set(labels.values())) != len(labels):
        raise ValueError(
            f"keys {list(keys)} collide under the default labels; pass label_map"
        )
    return labels


def _token_labels(records: Sequence[SliceRecord], label_map: Mapping[str, int]):
    return np.concatenate(
        [
            np.full(math.prod(event), label_map[k], np.int32)
            for k, _, event, _ in records
        ]
    )


def _runs(records: Sequence[SliceRecord]) -> list[tuple[int, int]]:
    """Contiguous token ranges ``(start, stop)`` of the records, merged."""
    runs: list[tuple[int, int]] = []
    for _, start, event, _ in records:
        stop = start + math.prod(event)
        if runs and runs[-1][1] == start:
            runs[-1] = (runs[-1][0], stop)
        else:
            runs.append((start, stop))
    return runs


def _take_tokens(array: Array, runs: Sequence[tuple[int, int]], axis: int) -> Array:
    parts = [lax_slice(array, a, b, axis) for a, b in runs]
    return parts[0] if len(parts) == 1 else jnp.concatenate(parts, axis=axis)


def lax_slice(array: Array, start: int, stop: int, axis: int) -> Array:
    """``array[..., start:stop, ...]`` along ``axis`` (static bounds)."""
    index = [slice(None)] * array.ndim
    index[axis] = slice(start, stop)
    return array[tuple(index)]


def _checked(independence: Mapping[str, Any] | None, slices: Slices) -> Independence:
    """Normalized independence, checked on the layout.

    Raises
    ------
    ValueError
        For a rule naming a key that is not in the data (a typo such as
        ``'obss'`` would otherwise be silently ignored) or a cross_local rule
        that does not fit the layout.
    """
    normalized = normalize_independence(independence)
    unknown = sorted(independence_keys(normalized) - set(slices))
    if unknown:
        raise ValueError(
            f"independence names keys {unknown} that are not in the data {list(slices)}"
        )
    check_independence(layout_key(slices), normalized)
    return normalized


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class Tokens:
    """Unified container of structured token data.

    Attributes
    ----------
    data : Array
        All tokens, ``(*sample, n_tokens, max_batch_size)``.
    padding_mask : Array
        ``bool[*sample, n_tokens]``: real tokens.
    functional_inputs : Array or None
        ``(*sample, n_tokens, max_batch_size)``, sentinel ``-1e8`` where a key
        has no input.
    records : tuple
        Static: ``(key, offset, event_shape, batch_shape)`` per key, in order.
    label_items : tuple
        Static: ``(key, label)`` pairs of the label map.
    independence : tuple
        Static: the normalized independence specification.

    Notes
    -----
    ``slices``, ``label_map``, ``key_order``, ``labels`` and
    ``self_attention_mask`` are derived from the static fields.
    """

    data: Array
    padding_mask: Array
    functional_inputs: Array | None
    records: tuple[SliceRecord, ...] = field(metadata={"static": True})
    label_items: tuple[tuple[str, int], ...] = field(metadata={"static": True})
    independence: Independence = field(metadata={"static": True})

    @classmethod
    def from_pytree(
        cls,
        data: Mapping[str, Array],
        independence: Mapping[str, Any] | None = None,
        functional_inputs: Mapping[str, Array] | None = None,
        sample_ndims: int = 1,
        batch_ndims: Mapping[str, int] | None = None,
        *,
        event_shapes: Mapping[str, Any] | None = None,
        label_map: Mapping[str, int] | None = None,
        max_batch_size: int | None = None,
    ) -> Tokens:
        """Flatten every key of ``data`` into one ``Tokens``.

        Parameters
        ----------
        data : mapping of str to Array
            Leaves ``(*sample, *event, *batch)``; key order is token order.
        independence : dict, optional
            ``{"local": [...], "cross": [...], "cross_local": [...]}``.
        functional_inputs : mapping of str to Array, optional
            See :func:`flatten_functional_inputs`.
        sample_ndims : int
            Leading sample dimensions.
        batch_ndims : mapping of str to int, optional
            Trailing batch dimensions per key (default 1).
        event_shapes : mapping, optional
            Actual (unpadded) event shapes, for the padding mask (see
            :func:`build_padding_mask`).
        label_map : mapping of str to int, optional
            Label of every key. The default, :func:`stable_label`, gives a key
            the same label in every ``Tokens`` (whatever other keys are present),
            so an estimator trained on ``{mu, theta, obs}`` reads ``theta`` the
            same way in ``{theta, obs}``.
        max_batch_size : int, optional
            Feature width (default: the widest key).

        Returns
        -------
        Tokens

        Raises
        ------
        ValueError
            For malformed data, independence or label maps.
        """
        flat, slices = flatten_pytree(
            data, sample_ndims, batch_ndims, 0.0, max_batch_size
        )
        sample_shape = flat.shape[:-2]
        if label_map is None:
            label_map = default_label_map(list(slices))
        missing = [k for k in slices if k not in label_map]
        if missing:
            raise ValueError(f"label_map has no label for keys {missing}")
        for key, label in label_map.items():
            if isinstance(label, bool) or not isinstance(label, (int, np.integer)):
                raise TypeError(f"label_map[{key!r}] must be an int, got {label!r}")
        padding = build_padding_mask(slices, event_shapes)
        padding = jnp.broadcast_to(padding, (*sample_shape, flat.shape[-2]))
        functional = flatten_functional_inputs(
            functional_inputs,
            slices,
            sample_ndims,
            FUNCTIONAL_PAD,
            sample_shape,
            flat.shape[-1],
        )
        return cls(
            data=flat,
            padding_mask=padding,
            functional_inputs=functional,
            records=_records(slices),
            label_items=tuple((str(k), int(v)) for k, v in label_map.items()),
            independence=_checked(independence, slices),
        )

    @property
    def slices(self) -> dict[str, dict[str, Any]]:
        """``{key: {"offset", "event_shape", "batch_shape"}}``."""
        return _slices(self.records)

    @property
    def label_map(self) -> dict[str, int]:
        """Label of every key."""
        return dict(self.label_items)

    @property
    def key_order(self) -> list[str]:
        """Keys in token order."""
        return [r[0] for r in self.records]

    @property
    def n_tokens(self) -> int:
        """Number of tokens."""
        return self.data.shape[-2]

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Leading sample shape of the data."""
        return tuple(self.data.shape[:-2])

    @property
    def labels(self) -> Array:
        """``int32[*sample, n_tokens]``: the label of each token's key."""
        labels = _token_labels(self.records, self.label_map)
        return jnp.broadcast_to(labels, (*self.sample_shape, labels.size))

    @property
    def self_attention_mask(self) -> Array:
        """``bool[n_tokens, n_tokens]`` from the independence specification."""
        layout = layout_key(self.slices)
        return jnp.asarray(cached_mask(layout, layout, self.independence))

    def select_tokens(self, keys: Sequence[str]) -> TokenView:
        """A view of the given keys (in that order); no data is copied.

        Raises
        ------
        KeyError
            For an unknown key (the message lists the available keys).
        ValueError
            If no key or a key twice is selected.
        """
        if isinstance(keys, str) or not isinstance(keys, (list, tuple)):
            raise TypeError(
                f"select_tokens takes a list of keys, got {keys!r}; write "
                f"select_tokens([{keys!r}])"
            )
        if not keys:
            raise ValueError(f"select_tokens needs at least one of {self.key_order}")
        slices = self.slices
        for key in keys:
            check_key(key, slices)
        if len(set(keys)) != len(keys):
            raise ValueError(f"select_tokens got duplicate keys: {list(keys)}")
        return TokenView(self, tuple(keys))

    def cross_attention_mask(
        self, query_keys: Sequence[str], key_keys: Sequence[str]
    ) -> Array:
        """``bool[n_query, n_key]`` mask between two key subsets."""
        query = self.select_tokens(query_keys)
        keys = self.select_tokens(key_keys)
        return jnp.asarray(
            cached_mask(
                layout_key(query.slices), layout_key(keys.slices), self.independence
            )
        )

    def with_values(self, **key_values: Array) -> Tokens:
        """New ``Tokens`` with the given keys' values replaced.

        Each value is shaped ``(*sample, *event, *batch)`` like the key's
        original leaf and is re-flattened at the key's offset.

        Raises
        ------
        KeyError
            For an unknown key.
        ValueError
            For a value of the wrong shape.
        """
        data, slices = self.data, self.slices
        for key, value in key_values.items():
            data = update_flat_array(data, slices, key, jnp.asarray(value))
        return Tokens(
            data,
            self.padding_mask,
            self.functional_inputs,
            self.records,
            self.label_items,
            self.independence,
        )

    def decode(self, flat_array: Array | None = None) -> dict[str, Array]:
        """Rebuild the pytree from ``flat_array`` (default: ``self.data``)."""
        flat = self.data if flat_array is None else flat_array
        return decode_pytree(flat, self.slices, flat.shape[:-2])

    def decode_keys(self, flat_array: Array, keys: Sequence[str]) -> dict[str, Array]:
        """Rebuild only ``keys`` from a flat array laid out like ``self.data``."""
        return decode_pytree(flat_array, self.slices, flat_array.shape[:-2], keys)


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class TokenView:
    """A view of some keys of a :class:`Tokens`.

    Holds only the parent and the selected keys; every property slices the
    parent's arrays on access (one contiguous slice per run of adjacent keys).

    Attributes
    ----------
    parent : Tokens
    selected_keys : tuple of str
    """

    parent: Tokens
    selected_keys: tuple[str, ...] = field(metadata={"static": True})

    @property
    def _records(self) -> tuple[SliceRecord, ...]:
        by_key = {r[0]: r for r in self.parent.records}
        return tuple(by_key[k] for k in self.selected_keys)

    @property
    def _runs(self) -> list[tuple[int, int]]:
        return _runs(self._records)

    @property
    def data(self) -> Array:
        """``(*sample, n_selected_tokens, max_batch_size)``."""
        return _take_tokens(self.parent.data, self._runs, axis=-2)

    @property
    def labels(self) -> Array:
        """Labels of the selected tokens (the parent's label map)."""
        labels = _token_labels(self._records, self.parent.label_map)
        return jnp.broadcast_to(labels, (*self.parent.sample_shape, labels.size))

    @property
    def self_attention_mask(self) -> Array:
        """Self-attention mask among the selected tokens."""
        layout = layout_key(self.slices)
        return jnp.asarray(cached_mask(layout, layout, self.parent.independence))

    @property
    def padding_mask(self) -> Array:
        """``bool[*sample, n_selected_tokens]``."""
        return _take_tokens(self.parent.padding_mask, self._runs, axis=-1)

    @property
    def functional_inputs(self) -> Array | None:
        """Functional inputs of the selected tokens, or None."""
        if self.parent.functional_inputs is None:
            return None
        return _take_tokens(self.parent.functional_inputs, self._runs, axis=-2)

    @property
    def slices(self) -> dict[str, dict[str, Any]]:
        """Slice metadata of the selected keys, offsets re-indexed from 0."""
        return _slices(self._records, reindex=True)

    def decode(self, flat_array: Array | None = None) -> dict[str, Array]:
        """Rebuild the selected keys from a flat array laid out like the view."""
        flat = self.data if flat_array is None else flat_array
        return decode_pytree(flat, self.slices, flat.shape[:-2])
