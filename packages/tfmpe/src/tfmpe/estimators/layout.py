"""From ``Tokens`` to the arrays the vector field sees.

An estimator orders the tokens as ``target_keys + conditioning_keys`` (a
:class:`~tfmpe.preprocessing.tokens.TokenView`), so the first ``n_target``
tokens are the ones the flow moves. Everything here is derived from the static
metadata of the ``Tokens`` (slices, labels, independence), so under ``jit`` it
becomes compile-time constants and a new layout simply traces again.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from tfmpe.preprocessing.tokens import Tokens, TokenView


def check_keys(value: object, name: str) -> tuple[str, ...]:
    """``value`` as a tuple of key names.

    Raises
    ------
    TypeError
        For a bare string or anything but a list/tuple of strings.
    ValueError
        For an empty or repeated selection.
    """
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise TypeError(
            f"{name} must be a list of key names, got {type(value).__name__} {value!r}"
        )
    if not all(isinstance(k, str) for k in value):
        raise TypeError(f"{name} must hold strings, got {list(value)!r}")
    if not value:
        raise ValueError(f"{name} must name at least one key")
    if len(set(value)) != len(value):
        raise ValueError(f"{name} names a key twice: {list(value)}")
    return tuple(value)


def resolve_keys(
    tokens: Tokens,
    target_keys: Sequence[str],
    conditioning_keys: Sequence[str] | None,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Validated target and conditioning keys present in ``tokens``.

    ``conditioning_keys=None`` conditions on every other key.

    Raises
    ------
    KeyError
        For a key not in ``tokens``, naming the argument and the available keys.
    ValueError
        If a key is both target and conditioning.
    """
    if not isinstance(tokens, Tokens):
        raise TypeError(f"tokens must be a Tokens, got {type(tokens).__name__}")
    target = check_keys(target_keys, "target_keys")
    available = tokens.key_order
    if conditioning_keys is None:
        conditioning = tuple(k for k in available if k not in target)
    else:
        conditioning = (
            check_keys(conditioning_keys, "conditioning_keys")
            if len(conditioning_keys)
            else ()
        )
    for name, keys in (("target_keys", target), ("conditioning_keys", conditioning)):
        for key in keys:
            if key not in available:
                raise KeyError(
                    f"{name}: key {key!r} not found in the tokens. Available keys: "
                    f"{available}"
                )
    both = sorted(set(target) & set(conditioning))
    if both:
        raise ValueError(f"keys {both} are both target_keys and conditioning_keys")
    return target, conditioning


@dataclass(frozen=True)
class Layout:
    """Static description of one token layout.

    Attributes
    ----------
    view : TokenView
        The selected tokens, targets first.
    n_target : int
        Number of target tokens.
    token_keys : tuple of str
        The key of every token.
    """

    view: TokenView
    n_target: int
    token_keys: tuple[str, ...]

    @property
    def feature_mask(self) -> np.ndarray:
        """``bool[N, F]``: the real feature columns of each token."""
        width = self.view.parent.data.shape[-1]
        rows = [
            np.arange(width) < math.prod(batch)
            for _, _, event, batch in self.view._records
            for _ in range(math.prod(event))
        ]
        return np.stack(rows)

    @property
    def is_target(self) -> np.ndarray:
        """``bool[N]``."""
        return np.arange(len(self.token_keys)) < self.n_target

    def label_index(self, vocabulary: Sequence[int]) -> np.ndarray:
        """``int32[N]``: index of each token's label in ``vocabulary``.

        Raises
        ------
        KeyError
            For a key whose label the estimator was not trained with.
        """
        label_map = self.view.parent.label_map
        position = {label: i for i, label in enumerate(vocabulary)}
        out = []
        for key in dict.fromkeys(self.token_keys):
            if label_map[key] not in position:
                raise KeyError(
                    f"key {key!r} has label {label_map[key]}, which the estimator "
                    f"was not built with (its labels: {list(vocabulary)})"
                )
        for key in self.token_keys:
            out.append(position[label_map[key]])
        return np.asarray(out, np.int32)

    def per_token(self, per_key: Mapping[str, Array]) -> Array:
        """Stack a per-key ``(F,)`` array into ``(N, F)`` token rows."""
        counts = {}
        for key in self.token_keys:
            counts[key] = counts.get(key, 0) + 1
        return jnp.concatenate(
            [
                jnp.broadcast_to(per_key[k], (n, per_key[k].shape[-1]))
                for k, n in counts.items()
            ]
        )


def layout(
    tokens: Tokens, target: tuple[str, ...], conditioning: tuple[str, ...]
) -> Layout:
    """The :class:`Layout` of ``tokens`` with ``target`` tokens first."""
    view = tokens.select_tokens([*target, *conditioning])
    token_keys = tuple(
        key for key, _, event, _ in view._records for _ in range(math.prod(event))
    )
    n_target = sum(1 for k in token_keys if k in target)
    return Layout(view, n_target, token_keys)
