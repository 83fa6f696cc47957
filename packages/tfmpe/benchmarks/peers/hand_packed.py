"""The Tokens-free peer of one training step: the loss from hand-packed arrays.

The same conditional flow matching loss, network and batch as
``FlowMatchingEstimator.loss``, but from arrays a user without ``Tokens``
would assemble by hand; ``bench_fmpe.py`` times one jitted value-and-grad
step of each and checks they give the same loss.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from tfmpe.estimators import FlowMatchingEstimator


def packed_loss(est: FlowMatchingEstimator, arrays: dict[str, Any]):
    """The flow matching loss from hand-packed arrays (the Tokens-free baseline).

    ``arrays``: standardized ``values (B, N, F)`` with the targets first,
    ``padding (B, N)`` and the static ``feature_mask``, ``label_index``,
    ``is_target``, ``self_mask`` and ``n_target``: what a user without
    ``Tokens`` would assemble by hand.
    """
    n_target = arrays["n_target"]
    const = {
        k: arrays[k] for k in ("feature_mask", "label_index", "is_target", "self_mask")
    }

    def loss(params, values, padding, rng_key):
        model = nnx.merge(est.graphdef, params)
        real = const["feature_mask"][None, :n_target] & padding[:, :n_target, None]
        x1 = values[:, :n_target]
        noise_rng_key, time_rng_key = jax.random.split(rng_key)
        x0 = jax.random.normal(noise_rng_key, x1.shape)
        t = jax.random.uniform(time_rng_key, (x1.shape[0],))[:, None, None]
        xt = (1 - (1 - est.sigma_min) * t) * x0 + t * x1
        u = x1 - (1 - est.sigma_min) * x0
        v = model(
            values.at[:, :n_target].set(xt), t[:, 0, 0], padding_mask=padding, **const
        )[:, :n_target]
        return jnp.sum(jnp.where(real, (v - u) ** 2, 0.0)) / jnp.maximum(
            jnp.sum(real), 1
        )

    return loss
