"""Unit tests of ``TokenGenerator`` and ``generate_static_dataset``.

Source: ``tfmpe/preprocessing/generation.py``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tfmpe import TokenGenerator, Tokens, generate_static_dataset

# --------------------------------------------------------------------------
# Data generation
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated():
    """A static dataset (8 samples) and the batches of a generator (4 each)."""
    # fixtures of conftest are function-scoped: rebuild the simulator here
    groups, per_group = 5, 5

    def prior(rng_key):
        mu_rng_key, theta_rng_key = jax.random.split(rng_key)
        mu = jax.random.normal(mu_rng_key, (1, 1))
        return {"mu": mu, "theta": mu + jax.random.normal(theta_rng_key, (groups, 1))}

    def simulator(rng_key, params):
        noise = jax.random.normal(rng_key, (groups, per_group, 1))
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


def test_generator_last_batch_is_smaller(generated, assert_same):
    prior, simulator, _, spec = generated["fns"]
    generator = TokenGenerator(prior, simulator, None, spec, 6, 4, seed=7)
    batches = list(generator)
    assert [b.data.shape[0] for b in batches] == [4, 2]
    assert_same(
        np.concatenate([b.data for b in batches]),
        np.asarray(generated["static"].data)[:6],
    )


def test_static_dataset_shapes(
    generated, hierarchical_gaussian_mask, gaussian_slices, assert_same
):
    static = generated["static"]
    assert isinstance(static, Tokens)
    assert static.data.shape == (8, 31, 1)
    assert static.padding_mask.shape == (8, 31)
    assert static.functional_inputs.shape == (8, 31, 1)
    assert static.labels.shape == (8, 31)
    assert static.slices == gaussian_slices
    assert_same(static.self_attention_mask, hierarchical_gaussian_mask)
    expected_functional = np.full((8, 31, 1), -1e8, dtype=np.float32)
    expected_functional[:, 6:] = 2.0
    assert_same(static.functional_inputs, expected_functional)
    # obs_ij = theta_i + noise: samples are not all equal
    assert np.unique(np.asarray(static.data[:, 0, 0])).size == 8


def test_static_dataset_follows_the_documented_keys(generated):
    prior, simulator, _, _ = generated["fns"]
    rng_key = jax.random.key(7)
    for i in (0, 5):
        prior_rng_key, sim_rng_key = jax.random.split(jax.random.fold_in(rng_key, i))
        params = prior(prior_rng_key)
        obs = simulator(sim_rng_key, params)["obs"]
        decoded = generated["static"].decode()
        np.testing.assert_allclose(decoded["mu"][i], params["mu"], rtol=1e-6)
        np.testing.assert_allclose(decoded["theta"][i], params["theta"], rtol=1e-6)
        np.testing.assert_allclose(decoded["obs"][i], obs, rtol=1e-6)


def test_generator_equals_static_dataset(generated, assert_same):
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


def test_static_dataset_int_seed_and_other_seed(generated, assert_same):
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


def prior(rng_key):
    return {"mu": jax.random.normal(rng_key, (1, 1))}


def simulate(rng_key, params):
    return {"obs": params["mu"] + jax.random.normal(rng_key, (3, 1))}


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
