"""Concatenate two ``Tokens`` datasets along the sample axis.

Datasets simulated with different numbers of groups (say 3 and 5 groups of
observations) have different event shapes. :func:`combine_tokens` pads every
key to the larger event shape of the two, key by key, so each key keeps its own
block of tokens at a consistent offset (a key that is not last may gain
tokens), marks the added tokens as padding, and stacks the samples.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from jaxtyping import Array

from tfmpe.preprocessing.flatten import FUNCTIONAL_PAD
from tfmpe.preprocessing.masks import check_independence, layout_key
from tfmpe.preprocessing.tokens import SliceRecord, Tokens, _slices


def _pad_key(
    array: Array, record: SliceRecord, event: tuple[int, ...], fill: float | bool
) -> Array:
    """One key's tokens ``(S, n, *rest)`` padded to ``event`` and re-flattened."""
    _, offset, own, _ = record
    n = math.prod(own)
    block = array[:, offset : offset + n]
    rest = block.shape[2:]
    block = block.reshape(block.shape[0], *own, *rest)
    pad = [(0, 0)] + [(0, e - o) for e, o in zip(event, own)] + [(0, 0)] * len(rest)
    block = jnp.pad(block, pad, constant_values=fill)
    return block.reshape(block.shape[0], math.prod(event), *rest)


def _check_compatible(t1: Tokens, t2: Tokens) -> None:
    for name, tokens in (("tokens1", t1), ("tokens2", t2)):
        if not isinstance(tokens, Tokens):
            raise TypeError(f"{name} must be a Tokens, got {type(tokens).__name__}")
        if len(tokens.sample_shape) != 1:
            raise ValueError(
                f"{name} must have one sample axis, got sample shape "
                f"{tokens.sample_shape}"
            )
    if t1.key_order != t2.key_order:
        raise ValueError(
            f"cannot combine tokens with different keys: {t1.key_order} vs "
            f"{t2.key_order}"
        )
    for (key, _, e1, b1), (_, _, e2, b2) in zip(t1.records, t2.records):
        if b1 != b2:
            raise ValueError(
                f"cannot combine tokens: key {key!r} has batch shape {b1} vs {b2}"
            )
        if len(e1) != len(e2):
            raise ValueError(
                f"cannot combine tokens: key {key!r} has event shape {e1} vs {e2}"
            )
    if t1.label_map != t2.label_map:
        raise ValueError("cannot combine tokens with different label maps")
    if t1.independence != t2.independence:
        raise ValueError("cannot combine tokens with different independence rules")
    if (t1.functional_inputs is None) != (t2.functional_inputs is None):
        raise ValueError(
            "cannot combine tokens: one has functional_inputs, the other does not"
        )


def combine_tokens(tokens1: Tokens, tokens2: Tokens) -> Tokens:
    """Samples of ``tokens1`` then ``tokens2`` in one ``Tokens``.

    Parameters
    ----------
    tokens1, tokens2 : Tokens
        One sample axis each; the same keys in the same order, batch shapes,
        label map, independence rules, and both or neither with functional
        inputs. Event shapes may differ in size (not in rank).

    Returns
    -------
    Tokens
        Each key's event shape is the elementwise maximum of the two; tokens a
        dataset did not have are padding (``padding_mask`` False, data 0,
        functional inputs the sentinel). The feature width is the larger one.

    Raises
    ------
    TypeError, ValueError
        For inputs that cannot be combined, saying what differs.
    """
    _check_compatible(tokens1, tokens2)
    width = max(tokens1.data.shape[-1], tokens2.data.shape[-1])
    events = [
        tuple(max(a, b) for a, b in zip(r1[2], r2[2]))
        for r1, r2 in zip(tokens1.records, tokens2.records)
    ]
    records, offset = [], 0
    for (key, _, _, batch), event in zip(tokens1.records, events):
        records.append((key, offset, event, batch))
        offset += math.prod(event)
    slices = _slices(records)
    check_independence(layout_key(slices), tokens1.independence)

    def padded(tokens: Tokens) -> tuple[Array, Array, Array | None]:
        def features(array: Array, fill: float) -> Array:
            extra = width - array.shape[-1]
            return jnp.pad(
                array, [(0, 0)] * (array.ndim - 1) + [(0, extra)], constant_values=fill
            )

        data = features(tokens.data, 0.0)
        functional = tokens.functional_inputs
        if functional is not None:
            functional = features(functional, FUNCTIONAL_PAD)
        parts = [
            (
                _pad_key(data, record, event, 0.0),
                _pad_key(tokens.padding_mask, record, event, False),
                None
                if functional is None
                else _pad_key(functional, record, event, FUNCTIONAL_PAD),
            )
            for record, event in zip(tokens.records, events)
        ]
        return (
            jnp.concatenate([p[0] for p in parts], axis=1),
            jnp.concatenate([p[1] for p in parts], axis=1),
            None
            if functional is None
            else jnp.concatenate([p[2] for p in parts], axis=1),
        )

    d1, p1, f1 = padded(tokens1)
    d2, p2, f2 = padded(tokens2)
    return Tokens(
        data=jnp.concatenate([d1, d2]),
        padding_mask=jnp.concatenate([p1, p2]),
        functional_inputs=None if f1 is None else jnp.concatenate([f1, f2]),
        records=tuple(records),
        label_items=tokens1.label_items,
        independence=tokens1.independence,
    )
