"""combine_tokens: per-key padding, the padding mask, errors."""

import jax.numpy as jnp
import numpy as np
import pytest

from tfmpe import FUNCTIONAL_PAD, Tokens, combine_tokens

SPEC = {
    "local": ["obs", "theta"],
    "cross": [("mu", "obs"), ("obs", "mu")],
    "cross_local": [("theta", "obs", (0, 0))],
}


def make(groups, samples, value, functional=False):
    data = {
        "mu": jnp.full((samples, 1, 1), value),
        "theta": jnp.full((samples, groups, 1), value + 1),
        "obs": jnp.full((samples, groups, 2, 1), value + 2),
    }
    inputs = {"obs": jnp.full((groups, 2, 1), 7.0)} if functional else None
    return Tokens.from_pytree(data, SPEC, functional_inputs=inputs)


def test_a_key_that_is_not_last_gains_tokens():
    combined = combine_tokens(make(2, 2, 0.0), make(3, 1, 10.0))
    assert combined.slices == {
        "mu": {"offset": 0, "event_shape": (1,), "batch_shape": (1,)},
        "theta": {"offset": 1, "event_shape": (3,), "batch_shape": (1,)},
        "obs": {"offset": 4, "event_shape": (3, 2), "batch_shape": (1,)},
    }
    # literal layout: mu | theta x 3 | obs (3 groups x 2)
    expected_data = np.array(
        [[0, 1, 1, 0, 2, 2, 2, 2, 0, 0]] * 2 + [[10, 11, 11, 11] + [12] * 6],
        np.float32,
    )
    np.testing.assert_array_equal(combined.data[..., 0], expected_data)
    expected_padding = np.array([[1, 1, 1, 0, 1, 1, 1, 1, 0, 0]] * 2 + [[1] * 10], bool)
    np.testing.assert_array_equal(combined.padding_mask, expected_padding)
    decoded = combined.decode()
    np.testing.assert_array_equal(decoded["theta"][:2, :2, 0], 1.0)
    np.testing.assert_array_equal(decoded["obs"][2, :, :, 0], 12.0)
    # the mask is the one of the padded layout
    np.testing.assert_array_equal(
        combined.self_attention_mask, make(3, 1, 0.0).self_attention_mask
    )


def test_functional_inputs_are_padded_with_the_sentinel():
    combined = combine_tokens(make(2, 1, 0.0, True), make(3, 1, 0.0, True))
    obs = combined.select_tokens(["obs"]).functional_inputs[..., 0]
    np.testing.assert_array_equal(obs[0], [7, 7, 7, 7, FUNCTIONAL_PAD, FUNCTIONAL_PAD])
    np.testing.assert_array_equal(obs[1], [7.0] * 6)


def test_incompatible_tokens_are_refused():
    with pytest.raises(ValueError, match="different keys"):
        combine_tokens(
            make(2, 1, 0.0), Tokens.from_pytree({"mu": jnp.zeros((1, 1, 1))})
        )
    with pytest.raises(ValueError, match="one has functional_inputs"):
        combine_tokens(make(2, 1, 0.0, True), make(2, 1, 0.0))
    wide = Tokens.from_pytree(
        {
            "mu": jnp.zeros((1, 1, 2)),
            "theta": jnp.zeros((1, 2, 1)),
            "obs": jnp.zeros((1, 2, 2, 1)),
        },
        SPEC,
    )
    with pytest.raises(ValueError, match="'mu' has batch shape"):
        combine_tokens(make(2, 1, 0.0), wide)
    with pytest.raises(TypeError, match="tokens2 must be a Tokens"):
        combine_tokens(make(2, 1, 0.0), {"mu": 1})
