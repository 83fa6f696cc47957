"""The transformer vector field: tokens in, a velocity on the target tokens out.

Input is one layout of tokens: target tokens first, then conditioning tokens
(as ``Tokens.select_tokens(target_keys + conditioning_keys)`` orders them).
The output head maps each token's final embedding back to the value width; it
is zeroed on conditioning tokens and on padded features, so those coordinates
of the flow never move.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from flax import nnx
from jaxtyping import Array

from tfmpe.nn.transformer.embedding import TokenEmbedding
from tfmpe.nn.transformer.encoder import EncoderBlock, masked_attention_mask


@dataclass(frozen=True)
class TransformerConfig:
    """Size of the vector field.

    Attributes
    ----------
    embed_dim : int
        Width of every token embedding (divisible by ``n_heads``).
    n_heads : int
    n_layers : int
        Encoder blocks.
    mlp_ratio : int
        Hidden width of each block's MLP, in multiples of ``embed_dim``.
    n_frequencies : int
        Octaves of the Fourier features of time and functional inputs.
    """

    embed_dim: int = 64
    n_heads: int = 4
    n_layers: int = 4
    mlp_ratio: int = 2
    n_frequencies: int = 6

    def __post_init__(self) -> None:
        """Validate the sizes.

        Raises
        ------
        TypeError, ValueError
            Naming the field and what is allowed.
        """
        for name, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {value!r}")
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if self.embed_dim % self.n_heads:
            raise ValueError(
                f"embed_dim ({self.embed_dim}) must be divisible by n_heads "
                f"({self.n_heads})"
            )

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TransformerConfig:
        """Build from a dict, naming unknown keys.

        Raises
        ------
        ValueError
            For a key that is not a field.
        """
        unknown = sorted(set(values) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(
                f"unknown TransformerConfig keys {unknown}; allowed: "
                f"{sorted(cls.__dataclass_fields__)}"
            )
        return cls(**values)


class Transformer(nnx.Module):
    """Masked transformer vector field ``v(x_t, t | context)``.

    Parameters
    ----------
    value_dim : int
        Token feature width.
    functional_dim : int
        Functional input width (0: none).
    n_labels : int
        Label vocabulary size.
    config : TransformerConfig
    rngs : nnx.Rngs
    """

    def __init__(
        self,
        value_dim: int,
        functional_dim: int,
        n_labels: int,
        config: TransformerConfig,
        *,
        rngs: nnx.Rngs,
    ) -> None:
        width = config.embed_dim
        self.embedding = TokenEmbedding(
            value_dim,
            functional_dim,
            n_labels,
            width,
            config.n_frequencies,
            rngs=rngs,
        )
        self.blocks = nnx.List(
            [
                EncoderBlock(width, config.n_heads, config.mlp_ratio * width, rngs=rngs)
                for _ in range(config.n_layers)
            ]
        )
        self.norm = nnx.LayerNorm(width, rngs=rngs)
        self.head = nnx.Linear(width, value_dim, rngs=rngs)

    def __call__(
        self,
        values: Array,
        t: Array,
        *,
        feature_mask: Array,
        label_index: Array,
        is_target: Array,
        self_mask: Array,
        padding_mask: Array,
        functional: Array | None = None,
    ) -> Array:
        """Velocity of every token (zero off the real target coordinates).

        Parameters
        ----------
        values : Array
            ``(B, N, value_dim)``: noisy targets then conditioning values.
        t : Array
            ``(B,)``.
        feature_mask : Array
            ``bool[N, value_dim]``.
        label_index : Array
            ``int[N]``.
        is_target : Array
            ``bool[N]``.
        self_mask : Array
            ``bool[N, N]``.
        padding_mask : Array
            ``bool[B, N]``.
        functional : Array, optional
            ``(B, N, functional_dim)``.

        Returns
        -------
        Array
            ``(B, N, value_dim)``.
        """
        h = self.embedding(values, feature_mask, label_index, is_target, t, functional)
        mask = masked_attention_mask(self_mask, padding_mask)
        for block in self.blocks:
            h = block(h, mask)
        out = self.head(self.norm(h))
        keep = feature_mask[None] & is_target[None, :, None] & padding_mask[..., None]
        return out * keep
