import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special

from scribe.models.components.special import lanczos_series, log_nb_coefficient

K = np.array([0.0, 0.0, 1.0, 2.0, 7.0, 250.0, 10_000.0, 123_456.0, 3.0, 40.0])
R = np.array([0.05, 30.0, 0.7, 1000.0, 3.0, 40.0, 2.5, 900.0, 1e4, 0.01])


def exact(k, r):
    return special.gammaln(k + r) - special.gammaln(r) - special.gammaln(k + 1)


def test_value_matches_float64_lgamma_in_float32():
    got = log_nb_coefficient(jnp.asarray(K, jnp.float32), jnp.asarray(R, jnp.float32))
    want = exact(K, R)
    # relative to the size of lgamma(k + r), the scale float32 can resolve
    scale = np.maximum(1.0, np.abs(special.gammaln(K + R)))
    assert np.all(np.abs(np.asarray(got) - want) / scale < 1e-6)
    assert np.all(np.asarray(got)[K == 0] == 0.0)


def test_naive_float32_difference_is_worse_at_large_counts():
    k, r = jnp.float32(10_000.0), jnp.float32(2.5)
    naive = jax.lax.lgamma(k + r) - jax.lax.lgamma(r) - jax.lax.lgamma(k + 1)
    want = exact(10_000.0, 2.5)
    assert abs(float(naive) - want) > 1e-3
    assert abs(float(log_nb_coefficient(k, r)) - want) < 1e-4


def test_gradients_are_digamma_differences():
    k, r = jnp.asarray(K), jnp.asarray(R)
    with jax.enable_x64(True):
        k, r = jnp.asarray(K), jnp.asarray(R)
        grad_r = jax.grad(lambda r: log_nb_coefficient(k, r).sum())(r)
        grad_k = jax.grad(lambda k: log_nb_coefficient(k, r).sum())(k)
    np.testing.assert_allclose(
        grad_r, special.digamma(K + R) - special.digamma(R), rtol=1e-9, atol=1e-10
    )
    np.testing.assert_allclose(
        grad_k, special.digamma(K + R) - special.digamma(K + 1), rtol=1e-9, atol=1e-10
    )
    assert np.all(np.asarray(grad_r)[K == 0] == 0.0)


def test_broadcasting_jit_vmap_and_integer_counts():
    counts = jnp.array([[0, 3, 12], [5, 0, 1]])
    r = jnp.array([0.5, 2.0, 8.0])
    got = jax.jit(log_nb_coefficient)(counts, r)
    np.testing.assert_allclose(
        got, exact(np.asarray(counts, float), np.asarray(r)), rtol=1e-5, atol=1e-6
    )
    rows = jax.vmap(log_nb_coefficient, in_axes=(0, None))(counts, r)
    np.testing.assert_allclose(rows, got, rtol=1e-6, atol=1e-5)
    grad = jax.grad(lambda r: log_nb_coefficient(counts, r).sum())(r)
    assert grad.shape == r.shape


@pytest.mark.parametrize("z", [0.0, 0.5, 3.0, 100.0, 1e5])
def test_lanczos_series_gives_lgamma_and_its_slope(z):
    with jax.enable_x64(True):
        series, slope = lanczos_series(jnp.float64(z))
        x = z + 1.0
        t = x + 6.5
        lgamma = (
            (x - 0.5) * np.log(t) - t + np.log(float(series)) + 0.5 * np.log(2 * np.pi)
        )
        digamma = np.log(t) + (x - 0.5) / t - 1.0 + float(slope) / float(series)
    assert lgamma == pytest.approx(special.gammaln(x), rel=1e-12, abs=1e-12)
    assert digamma == pytest.approx(special.digamma(x), rel=1e-10, abs=1e-12)
