"""The models' closed-form posteriors against Gaussian conditioning by brute force."""

import jax
import numpy as np
import pytest

from tfmpe.models.brownian import BrownianGaussian
from tfmpe.models.hierarchical_gaussian import HierarchicalGaussian


def conditioned(k, j, tau, noise_var, obs):
    """Posterior of (mu, theta) from the joint covariance of (mu, theta, obs)."""
    n = 1 + k + k * j
    group = np.concatenate([[-1], np.arange(k), np.repeat(np.arange(k), j)])
    cov = np.ones((n, n))  # every variable shares mu's unit variance
    same = group[:, None] == group[None, :]
    cov += tau**2 * (same & (group[:, None] >= 0))
    obs_idx = np.arange(1 + k, n)
    cov[obs_idx, obs_idx] += np.tile(noise_var, k)
    x, y = np.arange(1 + k), obs_idx
    gain = cov[np.ix_(x, y)] @ np.linalg.inv(cov[np.ix_(y, y)])
    return gain @ obs.reshape(-1), cov[np.ix_(x, x)] - gain @ cov[np.ix_(y, x)]


@pytest.mark.parametrize("k", [1, 3, 7])
def test_hierarchical_gaussian_posterior(k):
    model = HierarchicalGaussian(n_groups=k, n_obs=4, tau=0.3, sigma=0.5)
    obs = np.asarray(model.observation(jax.random.key(k))["obs"])[..., 0]
    mean, cov = model.posterior(obs)
    ref_mean, ref_cov = conditioned(k, 4, 0.3, np.full(4, 0.25), obs)
    np.testing.assert_allclose(mean, ref_mean, atol=1e-9)
    np.testing.assert_allclose(cov, ref_cov, atol=1e-9)


@pytest.mark.parametrize("k", [1, 4])
def test_brownian_posterior(k):
    model = BrownianGaussian(n_groups=k, n_obs=5, tau=0.2, sigma=0.4)
    params = model.prior(jax.random.key(0))
    obs = np.asarray(model.simulate(jax.random.key(1), params)["obs"])[..., 0]
    mean, cov = model.posterior(obs)
    ref_mean, ref_cov = conditioned(k, 5, 0.2, 0.16 * model.times, obs)
    np.testing.assert_allclose(mean, ref_mean, atol=1e-9)
    np.testing.assert_allclose(cov, ref_cov, atol=1e-9)


def test_brownian_functional_inputs_are_the_times():
    model = BrownianGaussian(n_groups=2, n_obs=4)
    times = np.asarray(model.functional_input_fn({}, {})["obs"])
    np.testing.assert_allclose(times[1, :, 0], [0.25, 0.5, 0.75, 1.0])
