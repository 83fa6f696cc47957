"""PRNG keys given as a key or as an integer seed."""

from __future__ import annotations

import jax
from jaxtyping import Array


def as_rng_key(rng_key: Array | int) -> Array:
    """``rng_key`` as a JAX PRNG key: an int is a seed, a key is returned as is.

    Parameters
    ----------
    rng_key : jax.Array or int

    Returns
    -------
    jax.Array
    """
    if isinstance(rng_key, int):
        return jax.random.key(rng_key)
    return rng_key
