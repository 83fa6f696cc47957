"""Token embedding: values, key label, functional inputs and flow time.

Every token becomes one vector of width ``embed_dim``, the sum of

* a linear map of its value features (padded features zeroed) and the mask of
  which features are real,
* a learned embedding of its key's label (an index into the estimator's label
  vocabulary) and of whether it is a target or a conditioning token,
* a linear map of fixed Fourier features of its functional inputs (features
  holding the ``FUNCTIONAL_PAD`` sentinel contribute nothing), and
* a linear map of Fourier features of the flow time ``t``.
"""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array

from tfmpe.preprocessing.flatten import FUNCTIONAL_PAD


def fourier_features(x: Array, n_frequencies: int) -> Array:
    """``[sin(2^k pi x), cos(2^k pi x)]`` for ``k = 0 .. n_frequencies - 1``.

    Parameters
    ----------
    x : Array
        Any shape ``(...,)``.
    n_frequencies : int
        Octaves.

    Returns
    -------
    Array
        ``(..., 2 * n_frequencies)``.
    """
    scales = jnp.pi * 2.0 ** jnp.arange(n_frequencies, dtype=x.dtype)
    angles = x[..., None] * scales
    return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)


class TokenEmbedding(nnx.Module):
    """Embed tokens (see the module docstring).

    Parameters
    ----------
    value_dim : int
        Feature width of the token data (``max_batch_size``).
    functional_dim : int
        Feature width of the functional inputs (0: none).
    n_labels : int
        Size of the label vocabulary.
    embed_dim : int
    n_frequencies : int
        Octaves of the Fourier features of time and functional inputs.
    rngs : nnx.Rngs
    """

    def __init__(
        self,
        value_dim: int,
        functional_dim: int,
        n_labels: int,
        embed_dim: int,
        n_frequencies: int,
        *,
        rngs: nnx.Rngs,
    ) -> None:
        self.n_frequencies = n_frequencies
        self.values = nnx.Linear(2 * value_dim, embed_dim, rngs=rngs)
        self.label = nnx.Embed(n_labels, embed_dim, rngs=rngs)
        self.role = nnx.Embed(2, embed_dim, rngs=rngs)
        self.time = nnx.Linear(2 * n_frequencies, embed_dim, rngs=rngs)
        self.functional = (
            nnx.Linear(functional_dim * (2 * n_frequencies + 1), embed_dim, rngs=rngs)
            if functional_dim
            else None
        )

    def __call__(
        self,
        values: Array,
        feature_mask: Array,
        label_index: Array,
        is_target: Array,
        t: Array,
        functional: Array | None,
    ) -> Array:
        """Embed a batch of token sets.

        Parameters
        ----------
        values : Array
            ``(B, N, value_dim)``.
        feature_mask : Array
            ``bool[N, value_dim]``: real features.
        label_index : Array
            ``int[N]``: index of each token's label in the vocabulary.
        is_target : Array
            ``bool[N]``.
        t : Array
            ``(B,)`` flow time in [0, 1].
        functional : Array or None
            ``(B, N, functional_dim)`` with the ``FUNCTIONAL_PAD`` sentinel.

        Returns
        -------
        Array
            ``(B, N, embed_dim)``.
        """
        mask = feature_mask.astype(values.dtype)
        h = self.values(
            jnp.concatenate([values * mask, jnp.broadcast_to(mask, values.shape)], -1)
        )
        h = h + self.label(label_index) + self.role(is_target.astype(jnp.int32))
        h = h + self.time(fourier_features(t, self.n_frequencies))[:, None, :]
        if self.functional is not None and functional is not None:
            present = functional > FUNCTIONAL_PAD / 2
            x = jnp.where(present, functional, 0.0)
            feats = fourier_features(x, self.n_frequencies) * present[..., None]
            feats = jnp.concatenate([feats, present[..., None].astype(x.dtype)], -1)
            h = h + self.functional(feats.reshape(*feats.shape[:-2], -1))
        return h
