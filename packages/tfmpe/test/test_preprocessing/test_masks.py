"""Unit tests of ``tfmpe/preprocessing/masks.py``.

Attention and padding masks from independence specs, and input validation of
independence rules, event shapes and mask sizes.
"""

import re

import jax.numpy as jnp
import numpy as np
import pytest

from tfmpe import (
    Tokens,
    build_cross_attention_mask,
    build_padding_mask,
    build_self_attention_mask,
)
from tfmpe.preprocessing import masks


def data(n_obs=3):
    return {
        "mu": np.zeros((2, 1, 1), np.float32),
        "obs": np.ones((2, n_obs, 1), np.float32),
    }


def test_a_rule_naming_an_unknown_key_is_an_error():
    with pytest.raises(ValueError, match=r"independence names keys \['obss'\]"):
        Tokens.from_pytree(data(), {"local": ["obss"]})


def test_a_bare_string_is_not_read_character_by_character():
    with pytest.raises(TypeError, match=r"independence\['local'\] must be a list"):
        Tokens.from_pytree(data(), {"local": "obs"})
    with pytest.raises(TypeError, match=r"independence\['cross'\] must be a list"):
        Tokens.from_pytree(data(), {"cross": ("mu", "obs")[0]})
    with pytest.raises(TypeError, match="key names are strings"):
        Tokens.from_pytree(data(), {"local": [1]})
    with pytest.raises(ValueError, match="dims must be"):
        Tokens.from_pytree(data(), {"cross_local": [("mu", "obs", (0.5, 0))]})


@pytest.mark.parametrize(
    ("event_shapes", "match"),
    [
        ({"obs": np.array([[-1], [2]])}, r"must lie in \[0, \(3,\)\]"),
        ({"obs": np.array([[5], [2]])}, r"must lie in \[0, \(3,\)\]"),
        ({"obs": np.array([[1.5], [2.0]])}, "must hold integers"),
        ({"obs": (4,)}, "does not fit"),
    ],
)
def test_event_shapes_must_fit_the_data(event_shapes, match):
    with pytest.raises((ValueError, TypeError), match=match):
        Tokens.from_pytree(data(), event_shapes=event_shapes)


def test_per_sample_event_shapes_mark_padding():
    tokens = Tokens.from_pytree(data(), event_shapes={"obs": np.array([[0], [2]])})
    np.testing.assert_array_equal(
        tokens.padding_mask, [[True, False, False, False], [True, True, True, False]]
    )


def test_a_mask_beyond_the_limit_is_refused_before_allocating(monkeypatch):
    monkeypatch.setattr(masks, "MASK_BYTES_LIMIT", 100)
    masks.cached_mask.cache_clear()
    tokens = Tokens.from_pytree(data(n_obs=20))  # 21 x 21 = 441 bytes
    with pytest.raises(ValueError, match=r"21 x 21 tokens would take"):
        _ = tokens.self_attention_mask
    masks.cached_mask.cache_clear()


def test_the_mask_limit_allows_32768_tokens():
    assert 32768**2 <= masks.MASK_BYTES_LIMIT < 32769**2


# --------------------------------------------------------------------------
# Independence specs, cross_attention_mask and mask generation
# --------------------------------------------------------------------------


def test_independence_is_validated(hierarchical_gaussian_data):
    with pytest.raises(ValueError, match="unknown rules"):
        Tokens.from_pytree(hierarchical_gaussian_data, {"locals": ["obs"]})
    with pytest.raises(ValueError, match="entries are"):
        Tokens.from_pytree(hierarchical_gaussian_data, {"cross": [("mu",)]})


def test_cross_attention_mask_parameters_to_observations(gaussian_tokens, assert_same):
    mask = gaussian_tokens.cross_attention_mask(["mu", "theta"], ["obs"])
    expected = np.zeros((6, 25), dtype=bool)  # mu row: cross (mu, obs)
    for i in range(5):
        expected[1 + i, 5 * i : 5 * i + 5] = True
    assert mask.dtype == jnp.bool_
    assert_same(mask, expected)


def test_cross_attention_mask_observations_to_parameters(gaussian_tokens, assert_same):
    mask = gaussian_tokens.cross_attention_mask(["obs"], ["mu", "theta"])
    expected = np.zeros((25, 6), dtype=bool)  # mu column: cross (obs, mu)
    for i in range(5):
        expected[5 * i : 5 * i + 5, 1 + i] = True
    assert_same(mask, expected)


@pytest.mark.parametrize(
    ("query", "keys", "expected"),
    [
        (["mu"], ["theta"], np.ones((1, 5), dtype=bool)),
        (["theta"], ["theta"], np.zeros((5, 5), dtype=bool)),
        (["mu"], ["mu"], np.ones((1, 1), dtype=bool)),
        (["obs"], ["obs"], np.zeros((25, 25), dtype=bool)),
    ],
)
def test_cross_attention_mask_small_blocks(
    gaussian_tokens, query, keys, expected, assert_same
):
    assert_same(gaussian_tokens.cross_attention_mask(query, keys), expected)


def test_cross_attention_mask_of_all_keys_is_the_self_mask(
    gaussian_tokens, hierarchical_gaussian_mask, assert_same
):
    keys = ["mu", "theta", "obs"]
    assert_same(
        gaussian_tokens.cross_attention_mask(keys, keys), hierarchical_gaussian_mask
    )


def test_hierarchical_gaussian_mask_literal(
    gaussian_tokens, hierarchical_gaussian_mask, assert_same
):
    mask = np.asarray(gaussian_tokens.self_attention_mask)
    assert mask.dtype == np.bool_
    assert mask.nbytes == 31 * 31
    assert_same(mask, hierarchical_gaussian_mask)
    assert_same(mask.sum(axis=1), [6] * 6 + [1] * 25)


def test_cross_is_one_directional(assert_same):
    tokens = Tokens.from_pytree(
        {"a": jnp.zeros((1, 2, 1)), "b": jnp.zeros((1, 3, 1))},
        {"cross": [("a", "b")]},
    )
    expected = np.array(
        [
            [1, 1, 0, 0, 0],
            [1, 1, 0, 0, 0],
            [1, 1, 1, 1, 1],
            [1, 1, 1, 1, 1],
            [1, 1, 1, 1, 1],
        ],
        dtype=bool,
    )
    assert_same(tokens.self_attention_mask, expected)


def test_local_removes_the_diagonal_too(assert_same):
    tokens = Tokens.from_pytree(
        {"a": jnp.zeros((1, 2, 1)), "b": jnp.zeros((1, 2, 1))}, {"local": ["a"]}
    )
    expected = np.array(
        [[0, 0, 1, 1], [0, 0, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]], dtype=bool
    )
    assert_same(tokens.self_attention_mask, expected)


def test_cross_local_none_pairs_the_diagonal_after_cross(assert_same):
    # cross forbids a<->b entirely; cross_local (applied last) re-enables a_i<->b_i
    tokens = Tokens.from_pytree(
        {"a": jnp.zeros((1, 3, 1)), "b": jnp.zeros((1, 3, 1))},
        {
            "local": ["a"],
            "cross": [("a", "b"), ("b", "a")],
            "cross_local": [("a", "b", None)],
        },
    )
    expected = np.array(
        [
            [0, 0, 0, 1, 0, 0],
            [0, 0, 0, 0, 1, 0],
            [0, 0, 0, 0, 0, 1],
            [1, 0, 0, 1, 1, 1],
            [0, 1, 0, 1, 1, 1],
            [0, 0, 1, 1, 1, 1],
        ],
        dtype=bool,
    )
    assert_same(tokens.self_attention_mask, expected)


def test_cross_local_multidimensional_events_block_diagonal(assert_same):
    tokens = Tokens.from_pytree(
        {"theta": jnp.zeros((1, 3, 2, 1)), "obs": jnp.zeros((1, 3, 4, 1))},
        {"local": ["theta", "obs"], "cross_local": [("theta", "obs", (0, 0))]},
    )
    one, zero = [1, 1, 1, 1], [0, 0, 0, 0]
    expected_cross = np.array(
        [
            one + zero + zero,
            one + zero + zero,
            zero + one + zero,
            zero + one + zero,
            zero + zero + one,
            zero + zero + one,
        ],
        dtype=bool,
    )
    assert_same(tokens.cross_attention_mask(["theta"], ["obs"]), expected_cross)
    assert_same(tokens.cross_attention_mask(["obs"], ["theta"]), expected_cross.T)
    expected = np.zeros((18, 18), dtype=bool)
    expected[:6, 6:] = expected_cross
    expected[6:, :6] = expected_cross.T
    assert_same(tokens.self_attention_mask, expected)


def test_cross_local_on_other_dims(assert_same):
    # theta (2, 3) vs obs (3, 4) on (1, 0): theta[i, j] <-> obs[j, k]
    tokens = Tokens.from_pytree(
        {"theta": jnp.zeros((1, 2, 3, 1)), "obs": jnp.zeros((1, 3, 4, 1))},
        {"cross_local": [("theta", "obs", (1, 0))]},
    )
    expected = np.zeros((6, 12), dtype=bool)
    for i in range(2):
        for j in range(3):
            for k in range(4):
                expected[3 * i + j, 4 * j + k] = True
    assert_same(tokens.cross_attention_mask(["theta"], ["obs"]), expected)
    assert_same(tokens.cross_attention_mask(["obs"], ["theta"]), expected.T)


@pytest.mark.parametrize("structure", ["hierarchical_gaussian", "three_level"])
def test_masks_match_the_naive_reference(
    structure, request, reference_mask, assert_same
):
    data = request.getfixturevalue(f"{structure}_data")
    spec = request.getfixturevalue(f"{structure}_spec")
    tokens = Tokens.from_pytree(data, spec)
    layout = [(k, s["event_shape"]) for k, s in tokens.slices.items()]
    assert_same(tokens.self_attention_mask, reference_mask(layout, layout, spec))
    keys = list(data)
    for i in range(len(keys)):
        query, other = keys[: i + 1], keys[i:][::-1]
        expected = reference_mask(
            [x for x in layout if x[0] in query],
            [x for x in layout if x[0] in other][::-1],
            spec,
        )
        assert_same(tokens.cross_attention_mask(query, other), expected)


def test_mask_builders_on_slices(
    hierarchical_gaussian_spec, hierarchical_gaussian_mask, gaussian_slices, assert_same
):
    full = build_self_attention_mask(gaussian_slices, hierarchical_gaussian_spec)
    assert full.dtype == jnp.bool_
    assert_same(full, hierarchical_gaussian_mask)
    sub = build_self_attention_mask(
        gaussian_slices, hierarchical_gaussian_spec, selected_keys=["theta", "obs"]
    )
    assert_same(sub, hierarchical_gaussian_mask[1:, 1:])
    query = {"theta": gaussian_slices["theta"]}
    keys = {"obs": gaussian_slices["obs"]}
    cross = build_cross_attention_mask(query, keys, hierarchical_gaussian_spec)
    assert_same(cross, hierarchical_gaussian_mask[1:6, 6:31])  # theta x obs tokens
    assert_same(
        build_cross_attention_mask(query, keys, None), np.ones((5, 25), dtype=bool)
    )


def test_cross_local_errors():
    with pytest.raises(ValueError, match="dims=None"):
        Tokens.from_pytree(
            {"a": jnp.zeros((1, 3, 1)), "b": jnp.zeros((1, 4, 1))},
            {"cross_local": [("a", "b", None)]},
        )
    with pytest.raises(ValueError, match="no dimension 1"):
        Tokens.from_pytree(
            {"a": jnp.zeros((1, 3, 1)), "b": jnp.zeros((1, 3, 1))},
            {"cross_local": [("a", "b", (1, 0))]},
        )


# --------------------------------------------------------------------------
# Padding mask
# --------------------------------------------------------------------------


def test_padding_mask_multidimensional_event(
    hierarchical_gaussian_data, gaussian_slices, assert_same
):
    tokens = Tokens.from_pytree(
        hierarchical_gaussian_data, event_shapes={"obs": (3, 4)}
    )
    obs_real = np.zeros((5, 5), dtype=bool)
    obs_real[:3, :4] = True
    expected = np.concatenate([np.ones(6, dtype=bool), obs_real.ravel()])
    assert tokens.padding_mask.dtype == jnp.bool_
    assert_same(tokens.padding_mask, np.broadcast_to(expected, (4, 31)))
    assert_same(build_padding_mask(gaussian_slices, {"obs": (3, 4)}), expected)
    assert_same(
        build_padding_mask(gaussian_slices, {"obs": (3, 4)}, ["obs", "mu"]),
        np.concatenate([obs_real.ravel(), [True]]),
    )


def test_padding_mask_per_sample_sizes(hierarchical_gaussian_data, assert_same):
    obs_sizes = np.array([[5, 5], [1, 2], [4, 1], [2, 5]])
    theta_sizes = np.array([[5], [3], [1], [4]])
    tokens = Tokens.from_pytree(
        hierarchical_gaussian_data,
        event_shapes={"obs": obs_sizes, "theta": theta_sizes},
    )
    expected = np.zeros((4, 31), dtype=bool)
    for s in range(4):
        expected[s, 0] = True
        for i in range(5):
            expected[s, 1 + i] = i < theta_sizes[s, 0]
            for j in range(5):
                expected[s, 6 + 5 * i + j] = i < obs_sizes[s, 0] and j < obs_sizes[s, 1]
    assert_same(tokens.padding_mask, expected)
    view = tokens.select_tokens(["obs"])
    assert_same(view.padding_mask, expected[:, 6:])


def test_padding_mask_errors(gaussian_slices):
    with pytest.raises(ValueError, match="does not fit"):
        build_padding_mask(gaussian_slices, {"obs": (6, 1)})
    with pytest.raises(ValueError, match="does not fit"):
        build_padding_mask(gaussian_slices, {"obs": (5,)})
    with pytest.raises(ValueError, match="event dimensions"):
        build_padding_mask(gaussian_slices, {"obs": np.ones((4, 3), dtype=int)})
    with pytest.raises(KeyError, match="Available keys"):
        build_padding_mask(gaussian_slices, {"sigma": (1,)})


# --------------------------------------------------------------------------
# The spec's error scenarios raised by mask building
# --------------------------------------------------------------------------


def test_error_dimension_mismatch_in_cross_local():
    message = (
        "Cannot apply cross_local independence: dimension 0 of 'theta' has size "
        "10 but dimension 0 of 'obs' has size 5"
    )
    spec = {"cross_local": [("theta", "obs", (0, 0))]}
    with pytest.raises(ValueError, match=re.escape(message)):
        Tokens.from_pytree(
            {"theta": jnp.zeros((2, 10, 1)), "obs": jnp.zeros((2, 5, 3, 1))}, spec
        )
    theta = {"theta": {"offset": 0, "event_shape": (10,), "batch_shape": (1,)}}
    obs = {"obs": {"offset": 0, "event_shape": (5, 3), "batch_shape": (1,)}}
    with pytest.raises(ValueError, match=re.escape(message)):
        build_cross_attention_mask(theta, obs, spec)
