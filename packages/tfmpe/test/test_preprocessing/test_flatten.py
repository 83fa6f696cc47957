"""Unit tests of ``tfmpe/preprocessing/flatten.py``.

Flatten/decode round trips, functional inputs, and input validation of
flattening: dtypes, sizes, keys and leaves (audit fixes).
"""

import math
import re
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tfmpe import (
    FUNCTIONAL_PAD,
    Tokens,
    decode_pytree,
    flatten_functional_inputs,
    flatten_pytree,
    update_flat_array,
)
from tfmpe.preprocessing import flatten


def gaussian(**overrides):
    data = {
        "mu": np.zeros((2, 1, 1), np.float32),
        "obs": np.ones((2, 3, 1), np.float32),
    }
    return {**data, **overrides}


def test_integers_float32_cannot_hold_are_refused_not_truncated():
    big = np.full((2, 1, 1), 2**40 + 7, np.int64)
    with pytest.raises(ValueError, match=r"data\['mu'\] holds integers beyond 2\^24"):
        Tokens.from_pytree(gaussian(mu=big))
    ok = np.full((2, 1, 1), 2**24, np.int64)
    assert float(Tokens.from_pytree(gaussian(mu=ok)).decode()["mu"][0, 0, 0]) == 2**24


def test_floats_beyond_float32_are_refused_not_inf():
    with pytest.raises(ValueError, match=r"data\['mu'\] holds values beyond float32"):
        Tokens.from_pytree(gaussian(mu=np.full((2, 1, 1), 1e300)))


def test_mixed_dtypes_become_float32_without_losing_a_count():
    counts = np.full((2, 3, 1), 70000, np.int32)
    tokens = Tokens.from_pytree(
        gaussian(mu=np.zeros((2, 1, 1), np.float16), obs=counts)
    )
    assert tokens.data.dtype == jnp.float32
    assert float(tokens.decode()["obs"][0, 0, 0]) == 70000.0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"batch_ndims": {"mu": -1}}, ValueError, r"batch_ndims\['mu'\] must be >= 0"),
        (
            {"batch_ndims": {"mu": 1.7}},
            TypeError,
            r"batch_ndims\['mu'\] must be an int",
        ),
        ({"sample_ndims": -1}, ValueError, "sample_ndims must be >= 0"),
        ({"sample_ndims": 2.5}, TypeError, "sample_ndims must be an int"),
        ({"max_batch_size": 2.5}, TypeError, "max_batch_size must be an int"),
    ],
)
def test_sizes_must_be_whole_and_in_range(kwargs, error, match):
    with pytest.raises(error, match=match):
        Tokens.from_pytree(gaussian(), **kwargs)


def test_a_huge_max_batch_size_is_refused_before_allocating():
    with pytest.raises(ValueError, match=r"max_batch_size=1000000000 .* GiB"):
        Tokens.from_pytree(gaussian(), max_batch_size=10**9)


def test_keys_must_be_strings_and_leaves_arrays():
    with pytest.raises(TypeError, match="keys must be strings, got 1"):
        Tokens.from_pytree({1: np.zeros((2, 1, 1)), "1": np.zeros((2, 1, 1))})
    with pytest.raises(TypeError, match="keys must be strings, got None"):
        Tokens.from_pytree({None: np.zeros((2, 1, 1))})
    with pytest.raises(TypeError, match=r"data\['mu'\] must be a NumPy or JAX array"):
        Tokens.from_pytree({"mu": [[[0.0]], [[1.0]]]})
    with pytest.raises(TypeError, match="non-numeric dtype"):
        Tokens.from_pytree({"mu": np.array([[["a"]]])})
    with pytest.raises(TypeError, match="data must be a dict"):
        Tokens.from_pytree([np.zeros((2, 1, 1))])


def test_decode_without_feature_columns_is_an_error():
    tokens = Tokens.from_pytree(gaussian())
    with pytest.raises(ValueError, match="no feature columns"):
        decode_pytree(jnp.zeros((2, 4, 0)), tokens.slices)


def test_token_bytes_limit_is_documented():
    assert flatten.TOKEN_BYTES_LIMIT == 4 * 2**30


# --------------------------------------------------------------------------
# flatten_pytree / decode_pytree
# --------------------------------------------------------------------------


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


@pytest.mark.filterwarnings("ignore:Warning. Batch size padding ratio")
@pytest.mark.parametrize(
    ("sample_ndims", "batch_ndims"),
    [(1, None), (1, {"b": 2}), (1, {"a": 0, "b": 2}), (2, {"b": 0}), (0, {"b": 2})],
)
def test_round_trip_with_different_batch_dims(
    sample_ndims, batch_ndims, np_flatten, assert_same
):
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


def test_round_trip_with_feature_padding(np_flatten, assert_same):
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
def test_round_trip_property(case, np_flatten, assert_same):
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


def test_update_flat_array_keeps_padding_columns(assert_same):
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
# Functional inputs
# --------------------------------------------------------------------------


def test_functional_inputs_matching_shapes(hierarchical_gaussian_data, assert_same):
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


def test_functional_inputs_shared_and_narrower_are_padded(
    three_level_data, assert_same
):
    # obs has two features per token, its input one: the second is the sentinel;
    # the input has no sample axis: every sample shares it
    shared = np.arange(6, dtype=np.float32).reshape(2, 3, 1)
    tokens = Tokens.from_pytree(three_level_data, functional_inputs={"obs": shared})
    expected = np.full((3, 15, 2), -1e8, dtype=np.float32)
    expected[:, 9:, 0] = np.arange(6)
    assert_same(tokens.functional_inputs, expected)


def test_functional_inputs_none(hierarchical_gaussian_data, gaussian_slices):
    tokens = Tokens.from_pytree(hierarchical_gaussian_data, functional_inputs=None)
    assert tokens.functional_inputs is None
    assert flatten_functional_inputs(None, gaussian_slices) is None


def test_flatten_functional_inputs_directly(assert_same):
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
# The spec's error scenarios raised by flattening
# --------------------------------------------------------------------------


def test_error_functional_input_shape():
    message = (
        "Functional input 'obs' has shape (10,) but expected to match token shape "
        "(10, 5)"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        Tokens.from_pytree(
            {"obs": jnp.zeros((10, 5, 1))}, functional_inputs={"obs": jnp.zeros(10)}
        )


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
