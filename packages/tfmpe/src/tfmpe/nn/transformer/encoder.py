"""Pre-norm transformer blocks with masked multi-head attention.

The attention mask of a batch combines the ``Tokens`` self-attention mask
(``True``: the row token may attend to the column token) with the padding mask
of the column tokens. A query row with nothing to attend to (a token the
independence specification cuts off from everything, or every key padding)
gets an attention output of exactly zero, so its residual stream passes
unchanged; it never attends uniformly to all tokens, as a plain softmax over
an all-masked row would.
"""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array


def masked_attention_mask(self_mask: Array, padding_mask: Array) -> Array:
    """The ``(B, 1, N, N)`` attention mask of a batch.

    Parameters
    ----------
    self_mask : Array
        ``bool[N, N]``: row token may attend to column token.
    padding_mask : Array
        ``bool[B, N]``: real tokens.

    Returns
    -------
    Array
        ``bool[B, 1, N, N]``.
    """
    return (self_mask[None, :, :] & padding_mask[:, None, :])[:, None]


class EncoderBlock(nnx.Module):
    """``h + attn(LN(h))`` then ``h + MLP(LN(h))``.

    Parameters
    ----------
    embed_dim : int
    n_heads : int
    mlp_dim : int
    rngs : nnx.Rngs
    """

    def __init__(
        self, embed_dim: int, n_heads: int, mlp_dim: int, *, rngs: nnx.Rngs
    ) -> None:
        self.norm1 = nnx.LayerNorm(embed_dim, rngs=rngs)
        self.attention = nnx.MultiHeadAttention(
            num_heads=n_heads,
            in_features=embed_dim,
            decode=False,
            deterministic=True,
            keep_rngs=False,
            rngs=rngs,
        )
        self.norm2 = nnx.LayerNorm(embed_dim, rngs=rngs)
        self.mlp_in = nnx.Linear(embed_dim, mlp_dim, rngs=rngs)
        self.mlp_out = nnx.Linear(mlp_dim, embed_dim, rngs=rngs)

    def __call__(self, h: Array, mask: Array) -> Array:
        """Apply the block.

        Parameters
        ----------
        h : Array
            ``(B, N, embed_dim)``.
        mask : Array
            ``bool[B, 1, N, N]`` from :func:`masked_attention_mask`.

        Returns
        -------
        Array
            ``(B, N, embed_dim)``.
        """
        attended = self.attention(self.norm1(h), mask=mask)
        has_keys = jnp.any(mask, axis=-1)[:, 0, :, None]
        h = h + jnp.where(has_keys, attended, 0.0)
        return h + self.mlp_out(nnx.gelu(self.mlp_in(self.norm2(h))))
