"""The heteroscedastic ("Brownian") hierarchical Gaussian, with functional inputs.

    mu ~ N(0, 1),  theta_i | mu ~ N(mu, tau^2),
    obs_ij | theta_i ~ N(theta_i, sigma^2 t_j),   t_j = (j + 1) / J,

so the noise of an observation grows with its time, as the variance of a
Brownian path does. The times are the observations' functional inputs: a
token of ``obs`` does not say which ``j`` it is (tokens of a key are
exchangeable to the transformer), so an estimator can weight the observations
correctly only through them. Linear-Gaussian: the posterior is exact, with
``P[theta_i, theta_i] = 1 / tau^2 + sum_j 1 / (sigma^2 t_j)`` and
``h[theta_i] = sum_j obs_ij / (sigma^2 t_j)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from tfmpe.models.hierarchical_gaussian import INDEPENDENCE, HierarchicalGaussian

__all__ = ["INDEPENDENCE", "BrownianGaussian"]


@dataclass(frozen=True, kw_only=True)
class BrownianGaussian(HierarchicalGaussian):
    """The model with ``n_groups`` groups of ``n_obs`` timed observations.

    The prior, ``observation`` and ``posterior_samples`` are those of
    :class:`HierarchicalGaussian`; the noise and the posterior differ.

    Attributes
    ----------
    n_groups, n_obs : int
    tau : float
        Spread of the groups around ``mu``.
    sigma : float
        Noise scale at time 1.
    """

    n_groups: int = 3
    n_obs: int = 5
    tau: float = 0.1
    sigma: float = 0.3

    @property
    def times(self) -> np.ndarray:
        """``(J,)`` observation times ``(j + 1) / J``."""
        return (np.arange(self.n_obs) + 1.0) / self.n_obs

    def simulate(self, rng_key: Array, params: dict[str, Array]) -> dict[str, Array]:
        """One draw of ``obs`` given ``theta``."""
        scale = self.sigma * jnp.sqrt(jnp.asarray(self.times, jnp.float32))
        noise = jax.random.normal(rng_key, (self.n_groups, self.n_obs, 1))
        return {"obs": params["theta"][:, None, :] + scale[None, :, None] * noise}

    def functional_input_fn(
        self, params: dict[str, Array], observations: dict[str, Array]
    ) -> dict[str, Array]:
        """The times of ``obs``, ``(K, J, 1)`` (the same for every sample)."""
        del params, observations
        times = jnp.asarray(self.times, jnp.float32)[None, :, None]
        return {"obs": jnp.broadcast_to(times, (self.n_groups, self.n_obs, 1))}

    def posterior(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact posterior mean and covariance of ``(mu, theta_1..K)``."""
        obs = np.asarray(obs, np.float64).reshape(np.shape(obs)[0], -1)
        k = obs.shape[0]
        weights = 1.0 / (self.sigma**2 * self.times)
        precision = np.zeros((k + 1, k + 1))
        precision[0, 0] = 1.0 + k / self.tau**2
        precision[0, 1:] = precision[1:, 0] = -1.0 / self.tau**2
        idx = np.arange(1, k + 1)
        precision[idx, idx] = 1.0 / self.tau**2 + weights.sum()
        h = np.concatenate([[0.0], obs @ weights])
        cov = np.linalg.inv(precision)
        return cov @ h, cov
