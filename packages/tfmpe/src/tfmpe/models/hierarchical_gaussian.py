"""The hierarchical Gaussian model and its exact posterior.

    mu ~ N(0, 1)
    theta_i | mu ~ N(mu, tau^2),           i = 1 .. K
    obs_ij | theta_i ~ N(theta_i, sigma^2), j = 1 .. J

with ``tau = sigma = 0.1`` and ``J = 5`` by default. The model is linear-Gaussian,
so the posterior of ``(mu, theta_1..K)`` given ``obs`` is Gaussian with
precision ``P`` and mean ``P^-1 h``:

    P[mu, mu] = 1 + K / tau^2,  P[theta_i, theta_i] = 1 / tau^2 + J / sigma^2,
    P[mu, theta_i] = -1 / tau^2,  h[theta_i] = sum_j obs_ij / sigma^2.

Leaves are shaped for ``Tokens``: ``mu (1, 1)``, ``theta (K, 1)``,
``obs (K, J, 1)`` per sample.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, replace

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

INDEPENDENCE = {
    "local": ["obs", "theta"],
    "cross": [("mu", "obs"), ("obs", "mu")],
    "cross_local": [("theta", "obs", (0, 0))],
}


def group_prior(rng_key: Array, n_groups: int, tau: float) -> dict[str, Array]:
    """``mu ~ N(0, 1)`` and ``theta_i | mu ~ N(mu, tau^2)``, shaped for ``Tokens``."""
    mu_rng_key, theta_rng_key = jax.random.split(rng_key)
    mu = jax.random.normal(mu_rng_key, (1, 1))
    theta = mu + tau * jax.random.normal(theta_rng_key, (n_groups, 1))
    return {"mu": mu, "theta": theta}


@dataclass(frozen=True, kw_only=True)
class HierarchicalPrior(ABC):
    """The shared prior of the hierarchical examples; subclasses add the data.

    ``mu ~ N(0, 1)`` and ``theta_i | mu ~ N(mu, tau^2)`` for ``n_groups``
    groups. Subclasses define ``simulate(rng_key, params)``.

    Attributes
    ----------
    n_groups : int
    tau : float
        Spread of the groups around ``mu``.
    """

    n_groups: int = 5
    tau: float = 0.1

    def prior(self, rng_key: Array) -> dict[str, Array]:
        """One draw of ``mu`` and ``theta``."""
        return group_prior(rng_key, self.n_groups, self.tau)

    @abstractmethod
    def simulate(self, rng_key: Array, params: dict[str, Array]) -> dict[str, Array]:
        """One draw of the data given ``params``."""

    def observation(self, rng_key: Array, n_groups: int | None = None) -> dict:
        """A ground truth and its observation, with ``n_groups`` groups."""
        model = self if n_groups is None else replace(self, n_groups=n_groups)
        prior_rng_key, sim_rng_key = jax.random.split(rng_key)
        params = model.prior(prior_rng_key)
        return {**params, **model.simulate(sim_rng_key, params)}


@dataclass(frozen=True, kw_only=True)
class HierarchicalGaussian(HierarchicalPrior):
    """The model with ``n_groups`` groups of ``n_obs`` observations.

    Attributes
    ----------
    n_groups : int
    n_obs : int
    tau : float
        Spread of the groups around ``mu``.
    sigma : float
        Observation noise.
    """

    n_groups: int = 5
    n_obs: int = 5
    tau: float = 0.1
    sigma: float = 0.1

    def simulate(self, rng_key: Array, params: dict[str, Array]) -> dict[str, Array]:
        """One draw of ``obs`` given ``theta``."""
        noise = jax.random.normal(rng_key, (self.n_groups, self.n_obs, 1))
        return {"obs": params["theta"][:, None, :] + self.sigma * noise}

    def posterior(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact posterior mean and covariance of ``(mu, theta_1..K)``.

        Parameters
        ----------
        obs : array
            ``(K, J)`` or ``(K, J, 1)`` for any ``K`` (not only ``n_groups``).

        Returns
        -------
        mean : np.ndarray
            ``(K + 1,)``, ``mu`` first.
        cov : np.ndarray
            ``(K + 1, K + 1)``.
        """
        obs = np.asarray(obs, np.float64).reshape(np.shape(obs)[0], -1)
        k, j = obs.shape
        precision = np.zeros((k + 1, k + 1))
        precision[0, 0] = 1.0 + k / self.tau**2
        precision[0, 1:] = precision[1:, 0] = -1.0 / self.tau**2
        precision[np.arange(1, k + 1), np.arange(1, k + 1)] = (
            1.0 / self.tau**2 + j / self.sigma**2
        )
        h = np.concatenate([[0.0], obs.sum(1) / self.sigma**2])
        cov = np.linalg.inv(precision)
        return cov @ h, cov

    def posterior_samples(self, obs: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
        """``(n, K + 1)`` exact posterior draws (``mu`` first)."""
        mean, cov = self.posterior(obs)
        return np.random.default_rng(seed).multivariate_normal(mean, cov, size=n)


def flatten_samples(samples: dict[str, Array]) -> Array:
    """``(n, 1 + K)``: ``mu`` then ``theta_1..K`` from a sample dict."""
    n = samples["mu"].shape[0]
    return jnp.concatenate(
        [samples["mu"].reshape(n, -1), samples["theta"].reshape(n, -1)], axis=1
    )
