"""The decode peer: ``jax.flatten_util.ravel_pytree``'s ``unravel``.

``unravel`` works on one sample, so the peer of ``Tokens.decode`` is
``jax.jit(jax.vmap(unravel))`` applied to the ``(S, N)`` array of the raveled
samples; it yields the same dict of ``(S, *event, *batch)`` arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import jax
from jax.flatten_util import ravel_pytree

DESCRIPTION = "jax.jit(jax.vmap(unravel)) of jax.flatten_util.ravel_pytree"


def unravel_decoder(
    data: Mapping[str, jax.Array],
) -> tuple[Callable[[jax.Array], dict[str, jax.Array]], jax.Array]:
    """The jitted, vmapped ``unravel`` of ``data`` and its raveled samples.

    Parameters
    ----------
    data : mapping of str to Array
        Leaves with a leading sample axis ``S``.

    Returns
    -------
    decode : callable
        ``jax.jit(jax.vmap(unravel))``: ``(S, N)`` array to the pytree.
    flat_samples : Array
        ``(S, N)``, every sample raveled.
    """
    _, unravel = ravel_pytree({key: value[0] for key, value in data.items()})
    flat_samples = jax.vmap(lambda d: ravel_pytree(d)[0])(data)
    return jax.jit(jax.vmap(unravel)), flat_samples
