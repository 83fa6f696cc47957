"""Uniform random numbers from Threefry-2x32 written in plain ``jnp`` operations.

``jax.random.uniform`` runs its Threefry rounds as a separate rolled loop, which
on XLA:CPU delivers a few hundred million draws per second and cannot fuse with
the sampler that consumes them. The same cipher (Salmon et al. 2011, 20 rounds,
the rotation constants of JAX's own implementation) written with elementwise
``jnp`` operations fuses into the Gibbs update. Counter-based: draw ``i`` of a
call is ``threefry(rng_key, (i, 0))``, so results depend only on the key and shape.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)


def _rotl(x: jax.Array, r: int) -> jax.Array:
    return (x << np.uint32(r)) | (x >> np.uint32(32 - r))


def threefry2x32(
    k0: jax.Array, k1: jax.Array, x0: jax.Array, x1: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Threefry-2x32 block cipher (20 rounds) on ``uint32`` arrays.

    Parameters
    ----------
    k0, k1 : uint32 scalars
        The key words.
    x0, x1 : uint32 arrays
        The counter words (broadcastable).

    Returns
    -------
    tuple of uint32 arrays
        The two output words.
    """
    ks = (k0, k1, k0 ^ k1 ^ _PARITY)
    x0, x1 = x0 + ks[0], x1 + ks[1]
    for group in range(5):
        for r in _ROTATIONS[group % 2]:
            x0 = x0 + x1
            x1 = _rotl(x1, r) ^ x0
        x0 = x0 + ks[(group + 1) % 3]
        x1 = x1 + ks[(group + 2) % 3] + np.uint32(group + 1)
    return x0, x1


def uniform(rng_key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """``float32`` uniforms in ``[0, 1)`` of the given shape from a PRNG key."""
    words = jax.random.key_data(rng_key).astype(jnp.uint32).reshape(-1)
    counter = lax_iota(shape)
    bits, _ = threefry2x32(words[0], words[1], counter, jnp.zeros_like(counter))
    mantissa = (bits >> np.uint32(9)) | np.uint32(0x3F800000)
    return jax.lax.bitcast_convert_type(mantissa, jnp.float32) - 1.0


def lax_iota(shape: tuple[int, ...]) -> jax.Array:
    """Row-major element index of every position of ``shape``, as ``uint32``."""
    index = jnp.zeros(shape, jnp.uint32)
    stride = 1
    for axis in reversed(range(len(shape))):
        index = index + jax.lax.broadcasted_iota(jnp.uint32, shape, axis) * np.uint32(
            stride
        )
        stride *= shape[axis]
    return index
