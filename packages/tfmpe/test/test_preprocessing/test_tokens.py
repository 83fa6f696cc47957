"""Unit tests of ``Tokens`` and ``TokenView`` (``tfmpe/preprocessing/tokens.py``).

Flattening, masks and generation have their own modules (``test_flatten.py``,
``test_masks.py``, ``test_generation.py``); shared fixtures are in ``conftest.py``.
"""

from __future__ import annotations

import dataclasses
import math
import re
import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tfmpe import FUNCTIONAL_PAD, Tokens, TokenView, stable_label

THREE_LEVEL_SLICES = {
    "mu": {"offset": 0, "event_shape": (1,), "batch_shape": (1,)},
    "tau": {"offset": 1, "event_shape": (2,), "batch_shape": (1,)},
    "theta": {"offset": 3, "event_shape": (2, 3), "batch_shape": (1,)},
    "obs": {"offset": 9, "event_shape": (2, 3), "batch_shape": (2,)},
}
# token ranges of the hierarchical Gaussian
MU, THETA, OBS = slice(0, 1), slice(1, 6), slice(6, 31)


# --------------------------------------------------------------------------
# Tokens creation
# --------------------------------------------------------------------------


@pytest.mark.parametrize("structure", ["two_level", "three_level"])
def test_from_pytree_populates_every_field(
    structure, request, np_flatten, gaussian_slices, assert_same
):
    prefix = "hierarchical_gaussian" if structure == "two_level" else "three_level"
    data = request.getfixturevalue(f"{prefix}_data")
    spec = request.getfixturevalue(f"{prefix}_spec")
    expected_mask = request.getfixturevalue(f"{prefix}_mask")
    expected_slices = (
        gaussian_slices if structure == "two_level" else THREE_LEVEL_SLICES
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


def test_three_level_padding_columns_are_zero(three_level_data, assert_same):
    tokens = Tokens.from_pytree(three_level_data)
    flat = np.asarray(tokens.data)
    # mu, tau and theta have one feature: their second column is padding
    assert_same(flat[:, :9, 1], np.zeros((3, 9)))
    assert_same(flat[:, :1, 0], three_level_data["mu"].reshape(3, 1))
    assert_same(flat[:, 9:, :], three_level_data["obs"].reshape(3, 6, 2))


def test_simple_pytree_warns_and_pads(simple_pytree, assert_same):
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


# --------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------


def test_round_trip_hierarchical_gaussian(
    gaussian_tokens, hierarchical_gaussian_data, assert_same
):
    decoded = gaussian_tokens.decode()
    assert list(decoded) == ["mu", "theta", "obs"]
    for key, value in hierarchical_gaussian_data.items():
        assert_same(decoded[key], value)


def test_decode_keys_rebuilds_a_subset(
    gaussian_tokens, hierarchical_gaussian_data, assert_same
):
    decoded = gaussian_tokens.decode_keys(gaussian_tokens.data, ["obs", "mu"])
    assert list(decoded) == ["obs", "mu"]
    assert_same(decoded["obs"], hierarchical_gaussian_data["obs"])
    assert_same(decoded["mu"], hierarchical_gaussian_data["mu"])


def test_decode_of_another_flat_array(gaussian_tokens, assert_same):
    # e.g. an estimator's output laid out like the tokens
    flat = np.arange(4 * 31, dtype=np.float32).reshape(4, 31, 1)
    decoded = gaussian_tokens.decode(jnp.asarray(flat))
    assert_same(decoded["mu"], flat[:, 0:1, 0].reshape(4, 1, 1))
    assert_same(decoded["theta"], flat[:, 1:6, 0].reshape(4, 5, 1))
    assert_same(decoded["obs"], flat[:, 6:31, 0].reshape(4, 5, 5, 1))


def test_max_batch_size_widens_the_features(hierarchical_gaussian_data, assert_same):
    tokens = Tokens.from_pytree(hierarchical_gaussian_data, max_batch_size=2)
    assert tokens.data.shape == (4, 31, 2)
    assert_same(tokens.data[..., 1], np.zeros((4, 31)))
    assert_same(tokens.decode()["obs"], hierarchical_gaussian_data["obs"])


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
    gaussian_slices,
    assert_same,
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
        expected_slices[key] = {**gaussian_slices[key], "offset": offset}
        offset += r.stop - r.start
    assert view.slices == expected_slices
    assert list(view.slices) == keys
    decoded = view.decode()
    assert list(decoded) == keys
    for key in keys:
        assert_same(decoded[key], hierarchical_gaussian_data[key])


def test_view_without_functional_inputs(gaussian_tokens):
    assert gaussian_tokens.select_tokens(["obs"]).functional_inputs is None


def test_view_follows_its_parent(gaussian_tokens, assert_same):
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


def test_with_values_single_key(
    gaussian_tokens, hierarchical_gaussian_data, assert_same
):
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


def test_with_values_multiple_keys_at_exact_offsets(gaussian_tokens, assert_same):
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


def test_with_values_keeps_padding_and_metadata(
    three_level_data, three_level_spec, assert_same
):
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


# --------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------


def test_labels_stable_across_key_subsets(hierarchical_gaussian_data, assert_same):
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


def test_default_labels_stable_across_key_subsets(
    hierarchical_gaussian_data, assert_same
):
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
# The spec's error scenarios raised by Tokens
# --------------------------------------------------------------------------


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


def small_pytree():
    return {
        "mu": np.zeros((2, 1, 1), np.float32),
        "obs": np.ones((2, 3, 1), np.float32),
    }


def test_label_map_values_must_be_ints():
    with pytest.raises(TypeError, match=r"label_map\['mu'\] must be an int"):
        Tokens.from_pytree(small_pytree(), label_map={"mu": "a", "obs": 1})


def test_select_tokens_with_a_bare_string_says_so():
    tokens = Tokens.from_pytree(small_pytree())
    with pytest.raises(TypeError, match=r"write select_tokens\(\['mu'\]\)"):
        tokens.select_tokens("mu")
