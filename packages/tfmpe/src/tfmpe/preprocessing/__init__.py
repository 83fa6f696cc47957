"""Flattening, masks, the ``Tokens`` container and dataset generation."""

from tfmpe.preprocessing.combine import combine_tokens
from tfmpe.preprocessing.flatten import (
    FUNCTIONAL_PAD,
    decode_pytree,
    flatten_functional_inputs,
    flatten_pytree,
    update_flat_array,
)
from tfmpe.preprocessing.generation import TokenGenerator, generate_static_dataset
from tfmpe.preprocessing.masks import (
    build_cross_attention_mask,
    build_padding_mask,
    build_self_attention_mask,
)
from tfmpe.preprocessing.tokens import Tokens, TokenView, stable_label

__all__ = [
    "FUNCTIONAL_PAD",
    "TokenGenerator",
    "TokenView",
    "Tokens",
    "build_cross_attention_mask",
    "build_padding_mask",
    "build_self_attention_mask",
    "combine_tokens",
    "decode_pytree",
    "flatten_functional_inputs",
    "flatten_pytree",
    "generate_static_dataset",
    "stable_label",
    "update_flat_array",
]
