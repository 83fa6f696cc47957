import numpy as np
import pytest
from pydantic import ValidationError

from calibrated_response.models import HistogramDistribution


def test_uniform_literal_statistics():
    h = HistogramDistribution.uniform(0.0, 10.0, 5)
    assert h.n_bins == 5
    np.testing.assert_allclose(h.bin_centers, [1, 3, 5, 7, 9])
    np.testing.assert_allclose(h.bin_widths, 2.0)
    assert h.mean == pytest.approx(5.0)
    assert h.variance == pytest.approx(100 / 12)
    assert h.entropy == pytest.approx(np.log(10.0))
    assert h.cdf(2.5) == pytest.approx(0.25)
    assert h.quantile(0.5) == pytest.approx(5.0)
    assert h.prob_greater_than(7.0) == pytest.approx(0.3)
    assert h.prob_less_than(-1.0) == 0.0 and h.prob_greater_than(11.0) == 0.0


def test_uneven_histogram_against_hand_computation():
    h = HistogramDistribution(bin_edges=[0, 1, 3, 4], bin_probabilities=[0.2, 0.0, 0.8])
    assert h.mean == pytest.approx(0.2 * 0.5 + 0.8 * 3.5)
    second = 0.2 * (0.25 + 1 / 12) + 0.8 * (3.5**2 + 1 / 12)
    assert h.variance == pytest.approx(second - h.mean**2)
    assert h.entropy == pytest.approx(-(0.2 * np.log(0.2) + 0.8 * np.log(0.8)))
    # the empty middle bin is skipped by the inverse CDF
    assert h.quantile(0.2) == pytest.approx(1.0)
    assert h.quantile(0.6) == pytest.approx(3.5)
    np.testing.assert_allclose(
        h.cdf(h.quantile(np.array([0.1, 0.5, 0.9]))), [0.1, 0.5, 0.9]
    )


def test_sampling_and_from_samples():
    h = HistogramDistribution(bin_edges=[0, 1, 2, 4], bin_probabilities=[0.5, 0.3, 0.2])
    x = h.sample(200_000, rng=0)
    assert abs(x.mean() - h.mean) < 0.01
    assert abs(x.var() - h.variance) < 0.02
    back = HistogramDistribution.from_samples(x, h.bin_edges)
    np.testing.assert_allclose(back.bin_probabilities, h.bin_probabilities, atol=0.005)
    np.testing.assert_array_equal(h.sample(5, rng=1), h.sample(5, rng=1))


def test_validation():
    with pytest.raises(ValidationError, match="one more entry"):
        HistogramDistribution(bin_edges=[0, 1], bin_probabilities=[0.5, 0.5])
    with pytest.raises(ValidationError, match="sum to 1"):
        HistogramDistribution(bin_edges=[0, 1, 2], bin_probabilities=[0.5, 0.6])
    with pytest.raises(ValidationError, match="non-negative"):
        HistogramDistribution(bin_edges=[0, 1, 2], bin_probabilities=[1.5, -0.5])
    with pytest.raises(ValidationError, match="increasing"):
        HistogramDistribution(bin_edges=[0, 2, 1], bin_probabilities=[0.5, 0.5])
    with pytest.raises(ValueError, match="q must lie"):
        HistogramDistribution.uniform(0, 1, 2).quantile(1.5)
    with pytest.raises(ValueError, match="within the edges"):
        HistogramDistribution.from_samples([0.5, 3.0], [0, 1, 2])


def test_binary_histogram_and_json_round_trip():
    h = HistogramDistribution(bin_edges=[0, 0.5, 1], bin_probabilities=[0.3, 0.7])
    assert h.prob_greater_than(0.5) == pytest.approx(0.7)  # P(True)
    assert HistogramDistribution.model_validate_json(h.model_dump_json()) == h
