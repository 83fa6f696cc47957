import jax
import numpy as np

from tfmpe.rng import as_rng_key


def test_an_int_is_a_seed_and_a_key_passes_through():
    rng_key = jax.random.key(3)
    assert as_rng_key(rng_key) is rng_key
    np.testing.assert_array_equal(
        jax.random.key_data(as_rng_key(3)), jax.random.key_data(rng_key)
    )
