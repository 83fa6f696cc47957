"""The SEIR simulator against SciPy and its NUTS reference against a grid."""

import jax
import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.stats import norm

from tfmpe.models.seir import HierarchicalSEIR


def scipy_log_prevalence(model: HierarchicalSEIR, theta: float) -> np.ndarray:
    """``log I(t_j)`` of one region by SciPy's adaptive Runge-Kutta."""
    beta = np.exp(np.log(2.0) + model.scale * theta) / model.infectious

    def field(t, y):
        s, e, i = y
        return [
            -beta * s * i,
            beta * s * i - e / model.incubation,
            e / model.incubation - i / model.infectious,
        ]

    start = [1 - 2 * model.initial, model.initial, model.initial]
    times = model.times
    sol = solve_ivp(field, (0, times[-1]), start, t_eval=times, rtol=1e-10, atol=1e-14)
    return np.log(sol.y[2])


def test_log_prevalence_matches_scipy_over_the_prior_range():
    model = HierarchicalSEIR(n_groups=4)
    theta = np.array([-2.0, -0.5, 0.7, 2.5])
    ours = np.asarray(model.log_prevalence(theta))
    reference = np.stack([scipy_log_prevalence(model, t) for t in theta])
    np.testing.assert_allclose(ours, reference, atol=2e-4)
    # nonlinear: the fastest epidemic has peaked and declines by week 6
    assert ours[3].argmax() < model.n_obs - 1
    assert np.all(np.diff(ours[0]) > 0)


def test_simulation_shapes_noise_and_functional_inputs():
    model = HierarchicalSEIR(n_groups=3)
    truth = model.observation(jax.random.key(0))
    assert truth["mu"].shape == (1, 1)
    assert truth["theta"].shape == (3, 1)
    assert truth["obs"].shape == (3, 6, 1)
    rng_keys = jax.random.split(jax.random.key(1), 400)
    draws = jax.vmap(lambda rng_key: model.simulate(rng_key, truth)["obs"])(rng_keys)
    residual = np.asarray(draws)[..., 0] - np.asarray(
        model.log_prevalence(truth["theta"][:, 0])
    )
    assert abs(residual.std() - model.noise) < 0.02
    assert abs(residual.mean()) < 0.02
    weeks = model.functional_input_fn(truth, truth)["obs"]
    np.testing.assert_allclose(np.asarray(weeks)[0, :, 0], np.arange(1, 7))


def grid_posterior(model: HierarchicalSEIR, obs: np.ndarray):
    """Posterior means and sds of ``(mu, theta)`` for one region, on a grid."""
    mu = np.linspace(-4, 4, 321)
    theta = np.linspace(-4, 4, 801)
    mean = np.asarray(model.log_prevalence(theta), np.float64)  # checked above
    log_lik = norm.logpdf(obs[None, :], mean, model.noise).sum(1)
    log_joint = (
        norm.logpdf(mu)[:, None]
        + norm.logpdf(theta[None, :], mu[:, None], model.tau)
        + log_lik[None, :]
    )
    w = np.exp(log_joint - log_joint.max())
    w /= w.sum()
    p_mu, p_theta = w.sum(1), w.sum(0)
    m_mu, m_theta = p_mu @ mu, p_theta @ theta
    sd_mu = np.sqrt(p_mu @ (mu - m_mu) ** 2)
    sd_theta = np.sqrt(p_theta @ (theta - m_theta) ** 2)
    return np.array([m_mu, m_theta]), np.array([sd_mu, sd_theta])


def test_nuts_reference_matches_a_grid_posterior():
    model = HierarchicalSEIR(n_groups=1)
    truth = model.observation(jax.random.key(3))
    obs = np.asarray(truth["obs"])[0, :, 0]
    mean, sd = grid_posterior(model, obs)
    samples, diagnostics = model.reference_posterior(
        truth["obs"], 2000, seed=0, warmup=500
    )
    assert samples.shape == (2000, 2)
    assert diagnostics["r_hat_max"] < 1.05
    assert diagnostics["divergences"] == 0
    # Monte Carlo error: sd / sqrt(ESS) with ESS >= 200
    np.testing.assert_allclose(samples.mean(0), mean, atol=0.1 * sd.max() + 0.02)
    np.testing.assert_allclose(samples.std(0), sd, rtol=0.15)


def test_nuts_reference_refuses_unconverged_chains_and_bad_n():
    model = HierarchicalSEIR(n_groups=2)
    truth = model.observation(jax.random.key(4))
    with pytest.raises(RuntimeError, match="did not converge"):
        model.reference_posterior(truth["obs"], 8, seed=0, warmup=1)
    with pytest.raises(ValueError, match="n must be"):
        model.reference_posterior(truth["obs"], 1)
