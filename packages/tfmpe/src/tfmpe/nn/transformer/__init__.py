"""The transformer vector field over ``Tokens``."""

from tfmpe.nn.transformer.embedding import TokenEmbedding, fourier_features
from tfmpe.nn.transformer.encoder import EncoderBlock, masked_attention_mask
from tfmpe.nn.transformer.transformer import Transformer, TransformerConfig

__all__ = [
    "EncoderBlock",
    "TokenEmbedding",
    "Transformer",
    "TransformerConfig",
    "fourier_features",
    "masked_attention_mask",
]
