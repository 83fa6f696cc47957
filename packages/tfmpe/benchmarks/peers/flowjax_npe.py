"""The flat-vector peer: neural posterior estimation with a flowjax MAF.

A masked autoregressive flow over the flattened parameter vector, conditioned
on the flattened data vector, trained by maximum likelihood with
``flowjax.train.fit_to_data`` (10 % validation split, early stopping). Inputs
and outputs are standardized with the training set's statistics, as the
estimator under test does. The data dimension is fixed at training time, so it
cannot condition on another number of groups.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from flowjax.distributions import Normal
from flowjax.flows import masked_autoregressive_flow
from flowjax.train import fit_to_data


@dataclass
class FlowjaxNPE:
    """A trained flowjax posterior and its standardization."""

    flow: object
    theta_mean: np.ndarray
    theta_std: np.ndarray
    obs_mean: np.ndarray
    obs_std: np.ndarray
    train_seconds: float
    steps: int

    def sample(self, obs: np.ndarray, n: int, rng_key: jax.Array) -> np.ndarray:
        """``(n, d)`` posterior samples given one flat observation."""
        condition = jnp.asarray((obs - self.obs_mean) / self.obs_std, jnp.float32)
        z = self.flow.sample(rng_key, (n,), condition=condition)
        return np.asarray(z) * self.theta_std + self.theta_mean


def train(
    theta: np.ndarray,
    obs: np.ndarray,
    rng_key: jax.Array,
    *,
    max_epochs: int,
    batch_size: int = 128,
    learning_rate: float = 1e-3,
    patience: int = 20,
) -> FlowjaxNPE:
    """Fit a conditional MAF (8 layers, width 50) to ``(theta, obs)`` pairs.

    Parameters
    ----------
    theta : array
        ``(n, d)`` flattened parameters.
    obs : array
        ``(n, c)`` flattened data.
    rng_key : jax.Array
    max_epochs, batch_size, learning_rate, patience
        Of ``fit_to_data``.

    Returns
    -------
    FlowjaxNPE
    """
    theta, obs = np.asarray(theta, np.float64), np.asarray(obs, np.float64)
    t_mean, t_std = theta.mean(0), theta.std(0)
    o_mean, o_std = obs.mean(0), obs.std(0)
    init_rng_key, fit_rng_key = jax.random.split(rng_key)
    flow = masked_autoregressive_flow(
        init_rng_key, base_dist=Normal(jnp.zeros(theta.shape[1])), cond_dim=obs.shape[1]
    )
    x = jnp.asarray((theta - t_mean) / t_std, jnp.float32)
    c = jnp.asarray((obs - o_mean) / o_std, jnp.float32)
    tic = time.perf_counter()
    flow, losses = fit_to_data(
        fit_rng_key,
        flow,
        (x, c),
        learning_rate=learning_rate,
        max_epochs=max_epochs,
        max_patience=patience,
        batch_size=batch_size,
        show_progress=False,
    )
    seconds = time.perf_counter() - tic
    epochs = len(losses["train"])
    steps = epochs * int(0.9 * len(theta)) // batch_size
    return FlowjaxNPE(flow, t_mean, t_std, o_mean, o_std, seconds, steps)
