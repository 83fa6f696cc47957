"""Input validation of flattening: dtypes, sizes, keys and leaves (audit fixes)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tfmpe import TokenGenerator, Tokens, decode_pytree, generate_static_dataset
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


def test_label_map_values_must_be_ints():
    with pytest.raises(TypeError, match=r"label_map\['mu'\] must be an int"):
        Tokens.from_pytree(gaussian(), label_map={"mu": "a", "obs": 1})


def test_decode_without_feature_columns_is_an_error():
    tokens = Tokens.from_pytree(gaussian())
    with pytest.raises(ValueError, match="no feature columns"):
        decode_pytree(jnp.zeros((2, 4, 0)), tokens.slices)


def test_select_tokens_with_a_bare_string_says_so():
    tokens = Tokens.from_pytree(gaussian())
    with pytest.raises(TypeError, match=r"write select_tokens\(\['mu'\]\)"):
        tokens.select_tokens("mu")


def prior(key):
    return {"mu": jax.random.normal(key, (1, 1))}


def simulate(key, params):
    return {"obs": params["mu"] + jax.random.normal(key, (3, 1))}


def test_generation_sizes_and_seed_are_validated():
    with pytest.raises(TypeError, match="seed must be an int, got None"):
        TokenGenerator(prior, simulate, None, None, 8, 4, seed=None)
    with pytest.raises(TypeError, match="n_samples must be an int"):
        generate_static_dataset(0, prior, simulate, None, None, 2.5)
    with pytest.raises(ValueError, match=r"n_samples=1000000000 .* GiB"):
        generate_static_dataset(0, prior, simulate, None, None, 10**9)
    with pytest.raises(ValueError, match=r"batch_size=1000000000 .* GiB"):
        TokenGenerator(prior, simulate, None, None, 10**9, 10**9, seed=0)
    with pytest.raises(ValueError, match="drop_last=True with batch_size"):
        TokenGenerator(prior, simulate, None, None, 4, 8, seed=0, drop_last=True)


def test_generator_drop_last_gives_one_shape():
    generator = TokenGenerator(
        prior, simulate, None, None, 10, 4, seed=0, drop_last=True
    )
    shapes = {batch.data.shape for batch in generator}
    assert len(generator) == 2 and shapes == {(4, 4, 1)}


def test_token_bytes_limit_is_documented():
    assert flatten.TOKEN_BYTES_LIMIT == 4 * 2**30
