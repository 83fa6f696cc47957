"""Unit tests of ``Tokens``, ``TokenView``, flattening, masks and generation."""

from __future__ import annotations

import dataclasses
import math
import re
import warnings
import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tfmpe import (
    FUNCTIONAL_PAD,
    TokenGenerator,
    Tokens,
    TokenView,
    build_cross_attention_mask,
    build_padding_mask,
    build_self_attention_mask,
    decode_pytree,
    flatten_functional_inputs,
    flatten_pytree,
    generate_static_dataset,
    stable_label,
    update_flat_array,
)

GAUSSIAN_SLICES = {
    "mu": {"offset": 0, "event_shape": (1,), "batch_shape": (1,)},
    "theta": {"offset": 1, "event_shape": (5,), "batch_shape": (1,)},
    "obs": {"offset": 6, "event_shape": (5, 5), "batch_shape": (1,)},
}
THREE_LEVEL_SLICES = {
    "mu": {"offset": 0, "event_shape": (1,), "batch_shape": (1,)},
    "tau": {"offset": 1, "event_shape": (2,), "batch_shape": (1,)},
    "theta": {"offset": 3, "event_shape": (2, 3), "batch_shape": (1,)},
    "obs": {"offset": 9, "event_shape": (2, 3), "batch_shape": (2,)},
}
# token ranges of the hierarchical Gaussian
MU, THETA, OBS = slice(0, 1), slice(1, 6), slice(6, 31)


@pytest.fixture
def gaussian_tokens(hierarchical_gaussian_data, hierarchical_gaussian_spec):
    return Tokens.from_pytree(hierarchical_gaussian_data, hierarchical_gaussian_spec)


def assert_same(actual, expected):
    """Exact equality of values, shapes and dtypes' kinds."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(actual, expected)


# --------------------------------------------------------------------------
# Tokens creation
# --------------------------------------------------------------------------


@pytest.mark.parametrize("structure", ["two_level", "three_level"])
def test_from_pytree_populates_every_field(structure, request, np_flatten):
    prefix = "hierarchical_gaussian" if structure == "two_level" else "three_level"
    data = request.getfixturevalue(f"{prefix}_data")
    spec = request.getfixturevalue(f"{prefix}_spec")
    expected_mask = request.getfixturevalue(f"{prefix}_mask")
    expected_slices = (
        GAUSSIAN_SLICES if structure == "two_level" else THREE_LEVEL_SLICES
    )
    tokens = Tokens.from_pytree(data, spec)

    n_samples = next(iter(data.values())).shape[0]
    n_tokens = expected_mask.shape[0]
    width = 1 if structure == "two_level" else 2
    expected_data, _ = np_flatten(data)
    assert tokens.data.shape == (n_samples, n_tokens, width)
    assert_same(tokens.data, expected_data)
    assert tokens.n_tokens == n_tokens
    assert tokens.sample_shape == (n_samples,)
    assert tokens.slices == expected_slices
    assert tokens.key_order == list(data)
    assert tokens.label_map == {k: stable_label(k) for k in data}
    expected_labels = np.concatenate(
        [
            np.full(math.prod(s["event_shape"]), stable_label(k))
            for k, s in expected_slices.items()
        ]
    )
    assert tokens.labels.dtype == jnp.int32
    assert_same(tokens.labels, np.broadcast_to(expected_labels, (n_samples, n_tokens)))
    assert tokens.padding_mask.dtype == jnp.bool_
    assert_same(tokens.padding_mask, np.ones((n_samples, n_tokens), dtype=bool))
    assert tokens.functional_inputs is None
    assert tokens.self_attention_mask.dtype == jnp.bool_
    assert_same(tokens.self_attention_mask, expected_mask)


def test_three_level_padding_columns_are_zero(three_level_data):
    tokens = Tokens.from_pytree(three_level_data)
    flat = np.asarray(tokens.data)
    # mu, tau and theta have one feature: their second column is padding
    assert_same(flat[:, :9, 1], np.zeros((3, 9)))
    assert_same(flat[:, :1, 0], three_level_data["mu"].reshape(3, 1))
    assert_same(flat[:, 9:, :], three_level_data["obs"].reshape(3, 6, 2))


def test_simple_pytree_warns_and_pads(simple_pytree):
    with pytest.warns(UserWarning, match=r"padding ratio is 3\.0x"):
        tokens = Tokens.from_pytree(simple_pytree)
    expected = np.zeros((1, 11, 3), dtype=np.float32)
    expected[0, :6, 0] = 1.0
    expected[0, 6:, :] = 1.0
    assert_same(tokens.data, expected)
    assert tokens.self_attention_mask.shape == (11, 11)
    assert bool(np.all(np.asarray(tokens.self_attention_mask)))  # no spec


def test_tokens_pytree_leaves_are_only_the_per_sample_arrays(gaussian_tokens):
    leaves = jax.tree_util.tree_leaves(gaussian_tokens)
    assert len(leaves) == 2  # data, padding_mask (functional inputs are None)
    assert leaves[0] is gaussian_tokens.data
    assert leaves[1] is gaussian_tokens.padding_mask


def test_independence_is_validated(hierarchical_gaussian_data):
    with pytest.raises(ValueError, match="unknown rules"):
        Tokens.from_pytree(hierarchical_gaussian_data, {"locals": ["obs"]})
    with pytest.raises(ValueError, match="entries are"):
        Tokens.from_pytree(hierarchical_gaussian_data, {"cross": [("mu",)]})


def test_flatten_pytree_rejects_malformed_data():
    with pytest.raises(ValueError, match="fewer than sample_ndims"):
        flatten_pytree({"a": jnp.zeros((3,))}, sample_ndims=1)
    with pytest.raises(ValueError, match="sample shape"):
        flatten_pytree({"a": jnp.zeros((3, 2, 1)), "b": jnp.zeros((4, 2, 1))})
    with pytest.raises(ValueError, match="smaller than the largest"):
        flatten_pytree({"a": jnp.zeros((3, 2, 4))}, max_batch_size=3)
    with pytest.raises(ValueError, match="not in data"):
        flatten_pytree({"a": jnp.zeros((3, 2, 4))}, batch_ndims={"b": 1})
    with pytest.raises(ValueError, match="at least one key"):
        flatten_pytree({})


# --------------------------------------------------------------------------
# Flatten -> decode round trip
# --------------------------------------------------------------------------


def test_round_trip_hierarchical_gaussian(gaussian_tokens, hierarchical_gaussian_data):
    decoded = gaussian_tokens.decode()
    assert list(decoded) == ["mu", "theta", "obs"]
    for key, value in hierarchical_gaussian_data.items():
        assert_same(decoded[key], value)


def test_decode_keys_rebuilds_a_subset(gaussian_tokens, hierarchical_gaussian_data):
    decoded = gaussian_tokens.decode_keys(gaussian_tokens.data, ["obs", "mu"])
    assert list(decoded) == ["obs", "mu"]
    assert_same(decoded["obs"], hierarchical_gaussian_data["obs"])
    assert_same(decoded["mu"], hierarchical_gaussian_data["mu"])


def test_decode_of_another_flat_array(gaussian_tokens):
    # e.g. an estimator's output laid out like the tokens
    flat = np.arange(4 * 31, dtype=np.float32).reshape(4, 31, 1)
    decoded = gaussian_tokens.decode(jnp.asarray(flat))
    assert_same(decoded["mu"], flat[:, 0:1, 0].reshape(4, 1, 1))
    assert_same(decoded["theta"], flat[:, 1:6, 0].reshape(4, 5, 1))
    assert_same(decoded["obs"], flat[:, 6:31, 0].reshape(4, 5, 5, 1))


@pytest.mark.filterwarnings("ignore:Warning. Batch size padding ratio")
@pytest.mark.parametrize(
    ("sample_ndims", "batch_ndims"),
    [(1, None), (1, {"b": 2}), (1, {"a": 0, "b": 2}), (2, {"b": 0}), (0, {"b": 2})],
)
def test_round_trip_with_different_batch_dims(sample_ndims, batch_ndims, np_flatten):
    rng = np.random.default_rng(3)
    sample = (3, 2)[:sample_ndims]
    data = {
        "a": rng.normal(size=(*sample, 4, 2)).astype(np.float32),
        "b": rng.normal(size=(*sample, 2, 3, 2)).astype(np.float32),
    }
    flat, slices = flatten_pytree(data, sample_ndims, batch_ndims)
    nb = {"a": 1, "b": 1, **(batch_ndims or {})}
    for key, leaf in data.items():
        split = leaf.ndim - nb[key]
        assert slices[key]["event_shape"] == leaf.shape[sample_ndims:split]
        assert slices[key]["batch_shape"] == leaf.shape[split:]
    expected, offsets = np_flatten(data, sample_ndims, nb)
    assert {k: s["offset"] for k, s in slices.items()} == offsets
    assert_same(flat, expected)
    decoded = decode_pytree(flat, slices)
    for key, leaf in data.items():
        assert_same(decoded[key], leaf)


def test_round_trip_with_feature_padding(np_flatten):
    rng = np.random.default_rng(4)
    data = {
        "narrow": rng.normal(size=(2, 3, 1)).astype(np.float32),
        "wide": rng.normal(size=(2, 2, 2)).astype(np.float32),
    }
    flat, slices = flatten_pytree(data, pad_value=-7.0, max_batch_size=2)
    expected, _ = np_flatten(data, pad=-7.0)
    assert_same(flat, expected)
    assert_same(flat[:, :3, 1], np.full((2, 3), -7.0))
    decoded = decode_pytree(flat, slices, sample_shape=(2,))
    assert_same(decoded["narrow"], data["narrow"])
    assert_same(decoded["wide"], data["wide"])


def test_max_batch_size_widens_the_features(hierarchical_gaussian_data):
    tokens = Tokens.from_pytree(hierarchical_gaussian_data, max_batch_size=2)
    assert tokens.data.shape == (4, 31, 2)
    assert_same(tokens.data[..., 1], np.zeros((4, 31)))
    assert_same(tokens.decode()["obs"], hierarchical_gaussian_data["obs"])


@st.composite
def pytrees(draw):
    """Random keys, event/batch shapes, sample_ndims and feature padding."""
    sample_ndims = draw(st.integers(0, 2))
    sample = tuple(draw(st.integers(1, 3)) for _ in range(sample_ndims))
    n_keys = draw(st.integers(1, 3))
    shapes, batch_ndims = {}, {}
    for i in range(n_keys):
        event = tuple(draw(st.lists(st.integers(1, 4), max_size=2)))
        batch = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
        shapes[f"k{i}"] = (*sample, *event, *batch)
        batch_ndims[f"k{i}"] = len(batch)
    extra = draw(st.integers(0, 2))
    seed = draw(st.integers(0, 2**16))
    return sample_ndims, shapes, batch_ndims, extra, seed


@settings(
    max_examples=25,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(case=pytrees())
def test_round_trip_property(case, np_flatten):
    sample_ndims, shapes, batch_ndims, extra, seed = case
    rng = np.random.default_rng(seed)
    data = {k: rng.normal(size=s).astype(np.float32) for k, s in shapes.items()}
    widths = [math.prod(shapes[k][len(shapes[k]) - batch_ndims[k] :]) for k in shapes]
    width = max(widths) + extra
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        flat, slices = flatten_pytree(
            data, sample_ndims, batch_ndims, pad_value=-3.0, max_batch_size=width
        )
    expected, offsets = np_flatten(data, sample_ndims, batch_ndims, width, pad=-3.0)
    assert_same(flat, expected)
    assert {k: s["offset"] for k, s in slices.items()} == offsets
    decoded = decode_pytree(flat, slices)
    assert list(decoded) == list(data)
    for key, leaf in data.items():
        assert_same(decoded[key], leaf)


# --------------------------------------------------------------------------
# select_tokens / TokenView
# --------------------------------------------------------------------------


def test_view_holds_only_parent_and_keys(gaussian_tokens):
    view = gaussian_tokens.select_tokens(["mu", "theta"])
    assert isinstance(view, TokenView)
    assert view.parent is gaussian_tokens
    assert [f.name for f in dataclasses.fields(view)] == ["parent", "selected_keys"]
    assert set(vars(view)) == {"parent", "selected_keys"}
    assert tuple(view.selected_keys) == ("mu", "theta")
    # no array of its own: its leaves are the parent's arrays themselves
    for mine, parents in zip(
        jax.tree_util.tree_leaves(view), jax.tree_util.tree_leaves(gaussian_tokens)
    ):
        assert mine is parents


@pytest.mark.parametrize(
    ("keys", "ranges"),
    [
        (["mu", "theta"], [MU, THETA]),
        (["obs"], [OBS]),
        (["obs", "mu"], [OBS, MU]),
        (["mu", "obs"], [MU, OBS]),
        (["theta", "mu", "obs"], [THETA, MU, OBS]),
    ],
)
def test_view_properties(
    keys,
    ranges,
    hierarchical_gaussian_data,
    hierarchical_gaussian_spec,
    hierarchical_gaussian_mask,
):
    rng = np.random.default_rng(5)
    functional = {"obs": rng.normal(size=(4, 5, 5, 1)).astype(np.float32)}
    tokens = Tokens.from_pytree(
        hierarchical_gaussian_data,
        hierarchical_gaussian_spec,
        functional_inputs=functional,
        event_shapes={"obs": (5, 3)},
    )
    view = tokens.select_tokens(keys)
    index = np.concatenate([np.arange(31)[r] for r in ranges])
    parent_data = np.asarray(tokens.data)

    assert_same(view.data, parent_data[:, index])
    expected_labels = np.concatenate(
        [np.full(r.stop - r.start, stable_label(k)) for k, r in zip(keys, ranges)]
    )
    assert_same(view.labels, np.broadcast_to(expected_labels, (4, index.size)))
    assert view.self_attention_mask.dtype == jnp.bool_
    assert_same(
        view.self_attention_mask, hierarchical_gaussian_mask[np.ix_(index, index)]
    )
    obs_real = np.zeros((5, 5), dtype=bool)
    obs_real[:, :3] = True
    full_padding = np.concatenate([np.ones(6, dtype=bool), obs_real.ravel()])
    assert_same(
        view.padding_mask, np.broadcast_to(full_padding[index], (4, index.size))
    )
    full_functional = np.full((4, 31, 1), FUNCTIONAL_PAD, dtype=np.float32)
    full_functional[:, 6:, :] = functional["obs"].reshape(4, 25, 1)
    assert_same(view.functional_inputs, full_functional[:, index])
    offset, expected_slices = 0, {}
    for key, r in zip(keys, ranges):
        expected_slices[key] = {**GAUSSIAN_SLICES[key], "offset": offset}
        offset += r.stop - r.start
    assert view.slices == expected_slices
    assert list(view.slices) == keys
    decoded = view.decode()
    assert list(decoded) == keys
    for key in keys:
        assert_same(decoded[key], hierarchical_gaussian_data[key])


def test_view_without_functional_inputs(gaussian_tokens):
    assert gaussian_tokens.select_tokens(["obs"]).functional_inputs is None


def test_view_follows_its_parent(gaussian_tokens):
    new_mu = np.full((4, 1, 1), 9.0, dtype=np.float32)
    updated = gaussian_tokens.with_values(mu=new_mu)
    view = updated.select_tokens(["mu"])
    assert view.parent is updated
    assert_same(view.data, new_mu.reshape(4, 1, 1))


def test_select_unknown_key_raises(gaussian_tokens):
    message = "Key 'sigma' not found. Available keys: ['mu', 'theta', 'obs']"
    with pytest.raises(KeyError, match=re.escape(message)):
        gaussian_tokens.select_tokens(["mu", "sigma"])


def test_select_duplicate_key_raises(gaussian_tokens):
    with pytest.raises(ValueError, match="duplicate"):
        gaussian_tokens.select_tokens(["mu", "mu"])
    with pytest.raises(ValueError, match="at least one"):
        gaussian_tokens.select_tokens([])


# --------------------------------------------------------------------------
# with_values
# --------------------------------------------------------------------------


def test_with_values_single_key(gaussian_tokens, hierarchical_gaussian_data):
    new_mu = np.array([10.0, 20.0, 30.0, 40.0], dtype=np.float32).reshape(4, 1, 1)
    before = np.asarray(gaussian_tokens.data).copy()
    updated = gaussian_tokens.with_values(mu=new_mu)
    expected = before.copy()
    expected[:, 0, 0] = [10.0, 20.0, 30.0, 40.0]
    assert_same(updated.data, expected)
    assert_same(gaussian_tokens.data, before)  # the original is unchanged
    decoded = updated.decode()
    assert_same(decoded["mu"], new_mu)
    assert_same(decoded["theta"], hierarchical_gaussian_data["theta"])
    assert_same(decoded["obs"], hierarchical_gaussian_data["obs"])


def test_with_values_multiple_keys_at_exact_offsets(gaussian_tokens):
    new_theta = np.arange(20, dtype=np.float32).reshape(4, 5, 1) + 100
    new_obs = np.arange(100, dtype=np.float32).reshape(4, 5, 5, 1) + 1000
    updated = gaussian_tokens.with_values(theta=new_theta, obs=new_obs)
    flat = np.asarray(updated.data)
    assert_same(flat[:, 0, 0], np.asarray(gaussian_tokens.data)[:, 0, 0])
    # theta is tokens 1..5, obs tokens 6..30 with obs[i, j] at 6 + 5 i + j
    assert_same(flat[:, 1:6, 0], np.arange(20).reshape(4, 5) + 100)
    assert_same(flat[:, 6:31, 0], np.arange(100).reshape(4, 25) + 1000)
    assert flat[2, 6 + 5 * 3 + 4, 0] == new_obs[2, 3, 4, 0]
    decoded = updated.decode()
    assert_same(decoded["theta"], new_theta)
    assert_same(decoded["obs"], new_obs)


def test_with_values_keeps_padding_and_metadata(three_level_data, three_level_spec):
    rng = np.random.default_rng(6)
    functional = {"tau": rng.normal(size=(3, 2, 1)).astype(np.float32)}
    tokens = Tokens.from_pytree(
        three_level_data,
        three_level_spec,
        functional_inputs=functional,
        event_shapes={"theta": (2, 2)},
    )
    new_tau = np.array([[1, 2], [3, 4], [5, 6]], np.float32).reshape(3, 2, 1)
    updated = tokens.with_values(tau=new_tau)
    flat = np.asarray(updated.data)
    assert_same(flat[:, 1:3, 0], new_tau[..., 0])
    assert_same(flat[:, 1:3, 1], np.zeros((3, 2)))  # feature padding kept
    assert_same(flat[:, 3:], np.asarray(tokens.data)[:, 3:])
    assert updated.records == tokens.records
    assert updated.label_items == tokens.label_items
    assert updated.independence == tokens.independence
    assert updated.padding_mask is tokens.padding_mask
    assert updated.functional_inputs is tokens.functional_inputs


def test_with_values_wrong_shape_raises(gaussian_tokens):
    with pytest.raises(ValueError, match=re.escape("expected (4, 5, 1)")):
        gaussian_tokens.with_values(theta=jnp.zeros((4, 6, 1)))


def test_with_values_unknown_key_raises(gaussian_tokens):
    message = "Key 'sigma' not found. Available keys: ['mu', 'theta', 'obs']"
    with pytest.raises(KeyError, match=re.escape(message)):
        gaussian_tokens.with_values(sigma=jnp.zeros((4, 1, 1)))


def test_update_flat_array_keeps_padding_columns():
    flat = jnp.full((2, 3, 2), 5.0)
    slices = {
        "a": {"offset": 0, "event_shape": (1,), "batch_shape": (1,)},
        "b": {"offset": 1, "event_shape": (2,), "batch_shape": (1,)},
    }
    out = update_flat_array(flat, slices, "b", jnp.array([[[1.0], [2.0]]] * 2))
    expected = np.full((2, 3, 2), 5.0, dtype=np.float32)
    expected[:, 1:, 0] = [1.0, 2.0]
    assert_same(out, expected)


# --------------------------------------------------------------------------
# cross_attention_mask and mask generation
# --------------------------------------------------------------------------


def test_cross_attention_mask_parameters_to_observations(gaussian_tokens):
    mask = gaussian_tokens.cross_attention_mask(["mu", "theta"], ["obs"])
    expected = np.zeros((6, 25), dtype=bool)  # mu row: cross (mu, obs)
    for i in range(5):
        expected[1 + i, 5 * i : 5 * i + 5] = True
    assert mask.dtype == jnp.bool_
    assert_same(mask, expected)


def test_cross_attention_mask_observations_to_parameters(gaussian_tokens):
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
def test_cross_attention_mask_small_blocks(gaussian_tokens, query, keys, expected):
    assert_same(gaussian_tokens.cross_attention_mask(query, keys), expected)


def test_cross_attention_mask_of_all_keys_is_the_self_mask(
    gaussian_tokens, hierarchical_gaussian_mask
):
    keys = ["mu", "theta", "obs"]
    assert_same(
        gaussian_tokens.cross_attention_mask(keys, keys), hierarchical_gaussian_mask
    )


def test_hierarchical_gaussian_mask_literal(
    gaussian_tokens, hierarchical_gaussian_mask
):
    mask = np.asarray(gaussian_tokens.self_attention_mask)
    assert mask.dtype == np.bool_
    assert mask.nbytes == 31 * 31
    assert_same(mask, hierarchical_gaussian_mask)
    assert_same(mask.sum(axis=1), [6] * 6 + [1] * 25)


def test_cross_is_one_directional():
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


def test_local_removes_the_diagonal_too():
    tokens = Tokens.from_pytree(
        {"a": jnp.zeros((1, 2, 1)), "b": jnp.zeros((1, 2, 1))}, {"local": ["a"]}
    )
    expected = np.array(
        [[0, 0, 1, 1], [0, 0, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]], dtype=bool
    )
    assert_same(tokens.self_attention_mask, expected)


def test_cross_local_none_pairs_the_diagonal_after_cross():
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


def test_cross_local_multidimensional_events_block_diagonal():
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


def test_cross_local_on_other_dims():
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
def test_masks_match_the_naive_reference(structure, request, reference_mask):
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
    hierarchical_gaussian_spec, hierarchical_gaussian_mask
):
    full = build_self_attention_mask(GAUSSIAN_SLICES, hierarchical_gaussian_spec)
    assert full.dtype == jnp.bool_
    assert_same(full, hierarchical_gaussian_mask)
    sub = build_self_attention_mask(
        GAUSSIAN_SLICES, hierarchical_gaussian_spec, selected_keys=["theta", "obs"]
    )
    assert_same(sub, hierarchical_gaussian_mask[1:, 1:])
    query = {"theta": GAUSSIAN_SLICES["theta"]}
    keys = {"obs": GAUSSIAN_SLICES["obs"]}
    cross = build_cross_attention_mask(query, keys, hierarchical_gaussian_spec)
    assert_same(cross, hierarchical_gaussian_mask[THETA, OBS])
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
# Functional inputs
# --------------------------------------------------------------------------


def test_functional_inputs_matching_shapes(hierarchical_gaussian_data):
    rng = np.random.default_rng(7)
    theta_in = rng.normal(size=(4, 5, 1)).astype(np.float32)
    obs_in = rng.normal(size=(4, 5, 5, 1)).astype(np.float32)
    tokens = Tokens.from_pytree(
        hierarchical_gaussian_data,
        functional_inputs={"theta": theta_in, "obs": obs_in},
    )
    expected = np.empty((4, 31, 1), dtype=np.float32)
    expected[:, 0, 0] = -1e8  # mu has no input: the sentinel
    expected[:, 1:6] = theta_in
    expected[:, 6:] = obs_in.reshape(4, 25, 1)
    assert tokens.functional_inputs.shape == tokens.data.shape
    assert_same(tokens.functional_inputs, expected)
    assert FUNCTIONAL_PAD == -1e8


def test_functional_inputs_shared_and_narrower_are_padded(three_level_data):
    # obs has two features per token, its input one: the second is the sentinel;
    # the input has no sample axis: every sample shares it
    shared = np.arange(6, dtype=np.float32).reshape(2, 3, 1)
    tokens = Tokens.from_pytree(three_level_data, functional_inputs={"obs": shared})
    expected = np.full((3, 15, 2), -1e8, dtype=np.float32)
    expected[:, 9:, 0] = np.arange(6)
    assert_same(tokens.functional_inputs, expected)


def test_functional_inputs_none(hierarchical_gaussian_data):
    tokens = Tokens.from_pytree(hierarchical_gaussian_data, functional_inputs=None)
    assert tokens.functional_inputs is None
    assert flatten_functional_inputs(None, GAUSSIAN_SLICES) is None


def test_flatten_functional_inputs_directly():
    slices = {
        "a": {"offset": 0, "event_shape": (2,), "batch_shape": (2,)},
        "b": {"offset": 2, "event_shape": (1,), "batch_shape": (1,)},
    }
    out = flatten_functional_inputs(
        {"b": jnp.array([[[3.0]], [[4.0]]])}, slices, sample_ndims=1
    )
    expected = np.full((2, 3, 2), -1e8, dtype=np.float32)
    expected[:, 2, 0] = [3.0, 4.0]
    assert_same(out, expected)


def test_functional_inputs_errors(hierarchical_gaussian_data):
    with pytest.raises(ValueError, match="more than max_batch_size"):
        Tokens.from_pytree(
            hierarchical_gaussian_data,
            functional_inputs={"theta": jnp.zeros((4, 5, 2))},
        )
    message = "Key 'sigma' not found. Available keys: ['mu', 'theta', 'obs']"
    with pytest.raises(KeyError, match=re.escape(message)):
        Tokens.from_pytree(
            hierarchical_gaussian_data, functional_inputs={"sigma": jnp.zeros(1)}
        )


# --------------------------------------------------------------------------
# Padding mask
# --------------------------------------------------------------------------


def test_padding_mask_multidimensional_event(hierarchical_gaussian_data):
    tokens = Tokens.from_pytree(
        hierarchical_gaussian_data, event_shapes={"obs": (3, 4)}
    )
    obs_real = np.zeros((5, 5), dtype=bool)
    obs_real[:3, :4] = True
    expected = np.concatenate([np.ones(6, dtype=bool), obs_real.ravel()])
    assert tokens.padding_mask.dtype == jnp.bool_
    assert_same(tokens.padding_mask, np.broadcast_to(expected, (4, 31)))
    assert_same(build_padding_mask(GAUSSIAN_SLICES, {"obs": (3, 4)}), expected)
    assert_same(
        build_padding_mask(GAUSSIAN_SLICES, {"obs": (3, 4)}, ["obs", "mu"]),
        np.concatenate([obs_real.ravel(), [True]]),
    )


def test_padding_mask_per_sample_sizes(hierarchical_gaussian_data):
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


def test_padding_mask_errors():
    with pytest.raises(ValueError, match="does not fit"):
        build_padding_mask(GAUSSIAN_SLICES, {"obs": (6, 1)})
    with pytest.raises(ValueError, match="does not fit"):
        build_padding_mask(GAUSSIAN_SLICES, {"obs": (5,)})
    with pytest.raises(ValueError, match="event dimensions"):
        build_padding_mask(GAUSSIAN_SLICES, {"obs": np.ones((4, 3), dtype=int)})
    with pytest.raises(KeyError, match="Available keys"):
        build_padding_mask(GAUSSIAN_SLICES, {"sigma": (1,)})


# --------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------


def test_labels_stable_across_key_subsets(hierarchical_gaussian_data):
    label_map = {"mu": 0, "theta": 1, "obs": 2}
    data = hierarchical_gaussian_data
    subset = Tokens.from_pytree(
        {"obs": data["obs"], "mu": data["mu"]}, label_map=label_map
    )
    assert_same(subset.labels, np.broadcast_to([2] * 25 + [0], (4, 26)))
    theta_only = Tokens.from_pytree({"theta": data["theta"]}, label_map=label_map)
    assert_same(theta_only.labels, np.full((4, 5), 1))
    full = Tokens.from_pytree(data, label_map=label_map)
    assert_same(full.select_tokens(["obs", "mu"]).labels, subset.labels)
    assert subset.label_map == label_map


def test_default_labels_stable_across_key_subsets(hierarchical_gaussian_data):
    data = hierarchical_gaussian_data
    full = Tokens.from_pytree(data)
    subset = Tokens.from_pytree({"theta": data["theta"], "obs": data["obs"]})
    assert full.label_map["theta"] == subset.label_map["theta"]
    assert_same(full.select_tokens(["theta", "obs"]).labels, subset.labels)
    # CRC-32 of the name: the same in every session (golden values)
    assert zlib.crc32(b"mu") & 0x7FFFFFFF == stable_label("mu") == 837124774
    assert full.label_map == {"mu": 837124774, "theta": 186157577, "obs": 571309228}


def test_label_map_missing_key_raises(hierarchical_gaussian_data):
    with pytest.raises(ValueError, match="no label"):
        Tokens.from_pytree(hierarchical_gaussian_data, label_map={"mu": 0})


# --------------------------------------------------------------------------
# Data generation
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated():
    """A static dataset (8 samples) and the batches of a generator (4 each)."""
    # fixtures of conftest are function-scoped: rebuild the simulator here
    groups, per_group = 5, 5

    def prior(key):
        k_mu, k_theta = jax.random.split(key)
        mu = jax.random.normal(k_mu, (1, 1))
        return {"mu": mu, "theta": mu + jax.random.normal(k_theta, (groups, 1))}

    def simulator(key, params):
        noise = jax.random.normal(key, (groups, per_group, 1))
        return {"obs": params["theta"][:, None, :] + noise}

    def functional(params, observations):
        del params
        return {"obs": jnp.ones_like(observations["obs"]) * 2.0}

    spec = {
        "local": ["obs", "theta"],
        "cross": [("mu", "obs"), ("obs", "mu")],
        "cross_local": [("theta", "obs", (0, 0))],
    }
    static = generate_static_dataset(
        jax.random.key(7), prior, simulator, functional, spec, 8
    )
    generator = TokenGenerator(prior, simulator, functional, spec, 8, 4, seed=7)
    return {
        "static": static,
        "generator": generator,
        "batches": list(generator),
        "again": list(TokenGenerator(prior, simulator, functional, spec, 8, 4, 7)),
        "fns": (prior, simulator, functional, spec),
    }


def test_generator_batch_count(generated):
    prior, simulator, _, spec = generated["fns"]
    assert len(generated["generator"]) == 2
    assert len(generated["batches"]) == 2
    for n, batch, expected in [(10, 4, 3), (10, 5, 2), (10, 10, 1), (3, 5, 1)]:
        assert (
            len(TokenGenerator(prior, simulator, None, spec, n, batch, 0)) == expected
        )


def test_generator_last_batch_is_smaller(generated):
    prior, simulator, _, spec = generated["fns"]
    generator = TokenGenerator(prior, simulator, None, spec, 6, 4, seed=7)
    batches = list(generator)
    assert [b.data.shape[0] for b in batches] == [4, 2]
    assert_same(
        np.concatenate([b.data for b in batches]),
        np.asarray(generated["static"].data)[:6],
    )


def test_static_dataset_shapes(generated, hierarchical_gaussian_mask):
    static = generated["static"]
    assert isinstance(static, Tokens)
    assert static.data.shape == (8, 31, 1)
    assert static.padding_mask.shape == (8, 31)
    assert static.functional_inputs.shape == (8, 31, 1)
    assert static.labels.shape == (8, 31)
    assert static.slices == GAUSSIAN_SLICES
    assert_same(static.self_attention_mask, hierarchical_gaussian_mask)
    expected_functional = np.full((8, 31, 1), -1e8, dtype=np.float32)
    expected_functional[:, 6:] = 2.0
    assert_same(static.functional_inputs, expected_functional)
    # obs_ij = theta_i + noise: samples are not all equal
    assert np.unique(np.asarray(static.data[:, 0, 0])).size == 8


def test_static_dataset_follows_the_documented_keys(generated):
    prior, simulator, _, _ = generated["fns"]
    key = jax.random.key(7)
    for i in (0, 5):
        prior_key, sim_key = jax.random.split(jax.random.fold_in(key, i))
        params = prior(prior_key)
        obs = simulator(sim_key, params)["obs"]
        decoded = generated["static"].decode()
        np.testing.assert_allclose(decoded["mu"][i], params["mu"], rtol=1e-6)
        np.testing.assert_allclose(decoded["theta"][i], params["theta"], rtol=1e-6)
        np.testing.assert_allclose(decoded["obs"][i], obs, rtol=1e-6)


def test_generator_equals_static_dataset(generated):
    static, batches = generated["static"], generated["batches"]
    for field_name in ("data", "padding_mask", "functional_inputs"):
        assert_same(
            np.concatenate([getattr(b, field_name) for b in batches]),
            getattr(static, field_name),
        )
    for batch in batches:
        assert batch.records == static.records
        assert batch.label_items == static.label_items
        assert batch.independence == static.independence
    for first, second in zip(generated["batches"], generated["again"]):
        assert_same(first.data, second.data)


def test_static_dataset_int_seed_and_other_seed(generated):
    prior, simulator, functional, spec = generated["fns"]
    same = generate_static_dataset(7, prior, simulator, functional, spec, 8)
    assert_same(same.data, generated["static"].data)
    other = generate_static_dataset(8, prior, simulator, functional, spec, 8)
    assert not np.array_equal(np.asarray(other.data), np.asarray(same.data))


def test_generation_errors(generated):
    prior, simulator, _, spec = generated["fns"]
    with pytest.raises(ValueError, match="n_samples must be >= 1"):
        generate_static_dataset(0, prior, simulator, None, spec, 0)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        TokenGenerator(prior, simulator, None, spec, 4, 0, 0)
    with pytest.raises(ValueError, match="same keys"):
        generate_static_dataset(
            0, prior, lambda key, params: {"mu": params["mu"]}, None, spec, 4
        )


# --------------------------------------------------------------------------
# The spec's six error scenarios
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


def test_error_functional_input_shape():
    message = (
        "Functional input 'obs' has shape (10,) but expected to match token shape "
        "(10, 5)"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        Tokens.from_pytree(
            {"obs": jnp.zeros((10, 5, 1))}, functional_inputs={"obs": jnp.zeros(10)}
        )


def test_error_key_not_found(gaussian_tokens):
    message = "Key 'sigma' not found. Available keys: ['mu', 'theta', 'obs']"
    calls = [
        lambda: gaussian_tokens.select_tokens(["sigma"]),
        lambda: gaussian_tokens.with_values(sigma=jnp.zeros((4, 1, 1))),
        lambda: gaussian_tokens.cross_attention_mask(["sigma"], ["mu"]),
        lambda: gaussian_tokens.decode_keys(gaussian_tokens.data, ["sigma"]),
    ]
    for call in calls:
        with pytest.raises(KeyError, match=re.escape(message)):
            call()


def test_error_padding_ratio_warning():
    data = {"a": jnp.zeros((2, 3, 2)), "b": jnp.zeros((2, 3, 7))}
    with pytest.warns(UserWarning, match=r"Batch size padding ratio is 3\.5x"):
        flatten_pytree(data)
    with pytest.warns(UserWarning, match="consider restructuring data"):
        Tokens.from_pytree(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # exactly 2x is allowed
        flatten_pytree({"a": jnp.zeros((2, 3, 2)), "b": jnp.zeros((2, 3, 4))})


@pytest.mark.filterwarnings("ignore:Warning. Batch size padding ratio")
def test_error_dynamic_shape_in_jit(hierarchical_gaussian_data):
    data = {k: jnp.asarray(v) for k, v in hierarchical_gaussian_data.items()}
    message = "Dynamic shape detected in JIT context"

    @jax.jit
    def flatten_with(width):
        return flatten_pytree(data, max_batch_size=width)[0]

    with pytest.raises(ValueError, match=message):
        flatten_with(3)

    @jax.jit
    def tokens_with(width):
        return Tokens.from_pytree(data, max_batch_size=width).data

    with pytest.raises(ValueError, match=message):
        tokens_with(3)

    @jax.jit
    def static_ok(values):  # traced data with static shapes is fine
        return flatten_pytree(values, max_batch_size=3)[0]

    assert static_ok(data).shape == (4, 31, 3)


def test_error_invalid_slice_reconstruction():
    slices = {
        "a": {"offset": 0, "event_shape": (10, 5), "batch_shape": (1,)},
        "b": {"offset": 50, "event_shape": (50,), "batch_shape": (1,)},
    }
    message = "Slice metadata specifies 100 tokens but flat array has 95 tokens"
    with pytest.raises(ValueError, match=re.escape(message)):
        decode_pytree(jnp.zeros((2, 95, 1)), slices)
