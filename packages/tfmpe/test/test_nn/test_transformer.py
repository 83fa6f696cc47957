"""The transformer vector field: masking, padding, empty rows, configuration."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from tfmpe.nn.transformer import (
    EncoderBlock,
    Transformer,
    TransformerConfig,
    fourier_features,
    masked_attention_mask,
)
from tfmpe.preprocessing.flatten import FUNCTIONAL_PAD

N, F = 6, 3
CONFIG = TransformerConfig(embed_dim=16, n_heads=2, n_layers=2)


def make_inputs(seed=0):
    rng = np.random.default_rng(seed)
    feature_mask = np.ones((N, F), bool)
    feature_mask[:, 2] = False  # every key has 2 real features
    feature_mask[3:, 1] = False  # the conditioning key has 1
    functional = rng.normal(size=(2, N, F)).astype(np.float32)
    functional[:, :, 2] = FUNCTIONAL_PAD
    return {
        "values": jnp.asarray(rng.normal(size=(2, N, F)), jnp.float32),
        "t": jnp.array([0.3, 0.8]),
        "feature_mask": jnp.asarray(feature_mask),
        "label_index": jnp.array([0, 1, 1, 2, 2, 2]),
        "is_target": jnp.array([True, True, True, False, False, False]),
        "self_mask": jnp.asarray(rng.random((N, N)) < 0.7),
        "padding_mask": jnp.array([[True] * 6, [True, True, False, True, True, False]]),
        "functional": jnp.asarray(functional),
    }


def model(functional_dim=F):
    return Transformer(F, functional_dim, 3, CONFIG, rngs=nnx.Rngs(0))


def call(m, inputs):
    values, t = inputs["values"], inputs["t"]
    rest = {k: v for k, v in inputs.items() if k not in ("values", "t")}
    return m(values, t, **rest)


def test_output_only_on_real_target_coordinates():
    out = np.asarray(call(model(), make_inputs()))
    inputs = make_inputs()
    keep = (
        np.asarray(inputs["feature_mask"])[None]
        & np.asarray(inputs["is_target"])[None, :, None]
        & np.asarray(inputs["padding_mask"])[..., None]
    )
    assert np.all(out[~keep] == 0.0)
    assert np.all(out[keep] != 0.0)


def test_padded_tokens_and_features_never_influence_real_ones():
    m, inputs = model(), make_inputs()
    base = np.asarray(call(m, inputs))
    noisy = dict(inputs)
    garbage = jax.random.normal(jax.random.key(1), (2, N, F)) * 1e3
    real = inputs["feature_mask"][None] & inputs["padding_mask"][..., None]
    noisy["values"] = jnp.where(real, inputs["values"], garbage)
    noisy["functional"] = jnp.where(
        inputs["functional"] == FUNCTIONAL_PAD,
        FUNCTIONAL_PAD,
        jnp.where(inputs["padding_mask"][..., None], inputs["functional"], garbage),
    )
    np.testing.assert_array_equal(np.asarray(call(m, noisy)), base)


def test_a_masked_out_token_does_not_reach_a_one_layer_query():
    m = Transformer(F, 0, 3, TransformerConfig(16, 2, 1), rngs=nnx.Rngs(0))
    inputs = make_inputs()
    inputs["functional"] = None
    self_mask = np.ones((N, N), bool)
    self_mask[0, 4] = False  # token 0 may not attend to token 4
    inputs["self_mask"] = jnp.asarray(self_mask)
    base = np.asarray(call(m, inputs))
    changed = dict(inputs, values=inputs["values"].at[:, 4].add(5.0))
    out = np.asarray(call(m, changed))
    np.testing.assert_array_equal(out[:, 0], base[:, 0])
    assert not np.allclose(out[:, 1], base[:, 1])  # token 1 sees token 4


def test_a_query_with_nothing_to_attend_to_keeps_its_residual_stream():
    block = EncoderBlock(8, 2, 16, rngs=nnx.Rngs(0))
    h = jax.random.normal(jax.random.key(0), (1, 4, 8))
    self_mask = jnp.ones((4, 4), bool).at[2].set(False)
    out = block(h, masked_attention_mask(self_mask, jnp.ones((1, 4), bool)))
    residual = h[:, 2] + block.mlp_out(nnx.gelu(block.mlp_in(block.norm2(h[:, 2]))))
    np.testing.assert_allclose(out[:, 2], residual, rtol=1e-6)


def test_fourier_features_by_hand():
    x = jnp.array([0.25])
    expected = [
        np.sin(np.pi * 0.25),
        np.sin(2 * np.pi * 0.25),
        np.cos(np.pi * 0.25),
        np.cos(2 * np.pi * 0.25),
    ]
    np.testing.assert_allclose(fourier_features(x, 2)[0], expected, atol=1e-6)


def test_config_is_validated():
    with pytest.raises(ValueError, match="divisible by n_heads"):
        TransformerConfig(embed_dim=10, n_heads=4)
    with pytest.raises(TypeError, match="n_layers must be an int"):
        TransformerConfig(n_layers=2.5)
    with pytest.raises(ValueError, match="n_heads must be >= 1"):
        TransformerConfig(n_heads=0)
    with pytest.raises(ValueError, match=r"unknown TransformerConfig keys \['depth'\]"):
        TransformerConfig.from_dict({"depth": 3})
