"""C2ST and SBC against cases whose answer is known."""

import numpy as np
import pytest

from tfmpe.metrics import c2st, sbc_ranks, sbc_uniformity


def test_c2st_is_chance_for_one_distribution_and_one_for_disjoint():
    rng = np.random.default_rng(0)
    p, q = rng.normal(size=(400, 2)), rng.normal(size=(400, 2))
    assert abs(c2st(p, q, max_iter=200) - 0.5) < 0.06
    assert c2st(p, q + 10.0, max_iter=200) > 0.98


def test_c2st_detects_a_too_narrow_posterior_and_folds_in_parallel_agree():
    rng = np.random.default_rng(1)
    p, q = rng.normal(size=(400, 2)), 0.5 * rng.normal(size=(400, 2))
    serial = c2st(p, q, max_iter=200)
    assert serial > 0.6
    assert c2st(p, q, max_iter=200, n_jobs=2) == serial


@pytest.mark.parametrize(
    "p, q, match",
    [
        (np.zeros((10, 2)), np.zeros((10, 3)), "same dim"),
        (np.zeros((3, 2)), np.zeros((3, 2)), "at least 5"),
        (np.full((10, 2), np.nan), np.zeros((10, 2)), "finite"),
    ],
)
def test_c2st_refuses_bad_samples(p, q, match):
    with pytest.raises(ValueError, match=match):
        c2st(p, q)


def test_sbc_ranks_of_the_exact_posterior_are_uniform_and_of_a_narrow_one_not():
    # theta ~ N(0, 1), x | theta ~ N(theta, 1): posterior N(x / 2, 1 / 2)
    rng = np.random.default_rng(2)
    n, draws = 2000, 99
    theta = rng.normal(size=(n, 1))
    x = theta + rng.normal(size=(n, 1))
    noise = rng.normal(size=(draws, n, 1))
    exact = x / 2 + np.sqrt(0.5) * noise
    narrow = x / 2 + 0.3 * noise
    ranks = sbc_ranks(theta, exact)
    assert ranks.min() >= 0 and ranks.max() <= draws
    assert sbc_uniformity(ranks, draws).min() > 0.001
    assert sbc_uniformity(sbc_ranks(theta, narrow), draws).max() < 1e-6


def test_sbc_ranks_count_samples_below_the_truth():
    samples = np.arange(5.0).reshape(5, 1, 1)
    np.testing.assert_array_equal(sbc_ranks(np.array([[2.5]]), samples), [[3]])
    with pytest.raises(ValueError, match="samples must be"):
        sbc_ranks(np.zeros((4, 2)), np.zeros((5, 4, 3)))
