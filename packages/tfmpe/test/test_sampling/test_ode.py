"""ODE integration against the Gaussian flow, whose map and density are exact."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.linalg import expm
from scipy.stats import norm

from tfmpe.sampling import flow_log_prob, integrate_flow

MEAN = jnp.array([[0.5, -1.0], [2.0, 0.0]])
SCALE = jnp.array([[0.3, 2.0], [0.7, 1.0]])
REAL = jnp.array([[True, True], [True, False]])  # one padded coordinate


def gaussian_field(t, x):
    """Marginal OT velocity from N(0, 1) to N(MEAN, SCALE^2) (sigma_min = 0).

    x_t = t m + s_t x_0 with s_t = sqrt((1 - t)^2 + t^2 s^2), so
    v = m + (ds_t / dt) / s_t (x - t m); padded coordinates hold still.
    """
    s_t = jnp.sqrt((1 - t) ** 2 + t**2 * SCALE**2)
    ds = (-(1 - t) + t * SCALE**2) / s_t
    return jnp.where(REAL, MEAN + ds / s_t * (x - t * MEAN), 0.0)


def test_dopri5_carries_noise_to_the_exact_transport_map():
    x0 = jax.random.normal(jax.random.key(0), (6, 2, 2))
    x1 = integrate_flow(gaussian_field, x0, rtol=1e-7, atol=1e-7)
    expected = jnp.where(REAL, MEAN + SCALE * x0, x0)
    np.testing.assert_allclose(x1, expected, atol=1e-5)
    loose = integrate_flow(gaussian_field, x0)  # default tolerance 1e-4
    np.testing.assert_allclose(loose, expected, atol=5e-3)


@pytest.mark.parametrize(("method", "tol"), [("euler", 2e-2), ("heun", 1e-4)])
def test_fixed_step_methods_converge(method, tol):
    x0 = jax.random.normal(jax.random.key(1), (3, 2, 2))
    x1 = integrate_flow(gaussian_field, x0, method=method, steps=200)
    np.testing.assert_allclose(x1, jnp.where(REAL, MEAN + SCALE * x0, x0), atol=tol)


def test_log_prob_exact_trace_matches_the_gaussian_density():
    x1 = MEAN + SCALE * jax.random.normal(jax.random.key(2), (5, 2, 2))
    real = jnp.broadcast_to(REAL, x1.shape)
    logp = flow_log_prob(lambda t, x, i: gaussian_field(t, x), x1, real)
    expected = np.where(REAL, norm.logpdf(x1, MEAN, SCALE), 0.0).sum(axis=(1, 2))
    np.testing.assert_allclose(logp, expected, atol=2e-3)


def test_log_prob_hutchinson_is_unbiased_for_a_coupled_linear_flow():
    # v = B x moves x0 to x1 = expm(B) x0: log p1(x1) = log N(expm(-B) x1) - tr B
    b = jnp.array([[0.2, 0.9], [-0.6, -0.1]])
    x1 = jnp.array([[[0.3], [-1.2]]])
    real = jnp.ones_like(x1, dtype=bool)

    def field(t, x, i):
        return (b @ x[:, 0])[:, None]

    x0 = np.asarray(expm(-np.asarray(b)) @ np.asarray(x1[0, :, 0]))
    expected = norm.logpdf(x0).sum() - float(jnp.trace(b))
    exact = flow_log_prob(field, x1, real)
    np.testing.assert_allclose(exact, [expected], atol=1e-3)
    rng_keys = jax.random.split(jax.random.key(3), 100)
    estimates = jax.jit(
        jax.vmap(lambda rng_key: flow_log_prob(field, x1, real, rng_key=rng_key)[0])
    )(rng_keys)
    assert float(jnp.std(estimates)) > 0.05  # a noisy estimator ...
    error = abs(float(jnp.mean(estimates)) - expected)
    assert error < 4 * float(jnp.std(estimates)) / np.sqrt(100)  # ... unbiased


def test_method_and_steps_are_validated():
    x0 = jnp.zeros((1, 2, 2))
    with pytest.raises(ValueError, match="method must be one of"):
        integrate_flow(gaussian_field, x0, method="rk4")
    with pytest.raises(ValueError, match="steps must be a positive int"):
        integrate_flow(gaussian_field, x0, method="euler")
    with pytest.raises(ValueError, match="steps must be a positive int"):
        integrate_flow(gaussian_field, x0, method="euler", steps=2.5)
