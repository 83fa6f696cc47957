import json

import numpy as np
import pytest

from calibrated_response.maxent_smm import DistributionBuilder, SMMConfig
from calibrated_response.models import (
    BinaryVariable,
    EqualityProposition,
    ExpectationEstimate,
    ProbabilityEstimate,
)

FAST = SMMConfig(max_bins=5, num_iterations=800, num_chains=512, progress=False)


def test_builder_matches_exact_maxent_and_reports_everything(reference, weather):
    variables, estimates, bins = weather
    builder = DistributionBuilder(variables, estimates, FAST)
    dist, info = builder.build(target_variable="temp")
    want, _ = reference(variables, estimates, bins)
    marginals = builder.get_all_marginals(info)
    assert list(marginals) == ["rain", "wind", "temp", "cost"]
    for (name, hist), exact in zip(marginals.items(), want):
        assert sum(hist.bin_probabilities) == pytest.approx(1.0)
        assert 0.5 * np.abs(np.asarray(hist.bin_probabilities) - exact).sum() < 0.03, (
            name
        )
    assert dist == marginals["temp"]
    assert dist.prob_greater_than(5.0) == pytest.approx(0.52, abs=0.03)
    assert marginals["cost"].mean == pytest.approx(45.0, abs=2.0)
    sat = info["constraint_satisfaction"]
    assert set(sat) == {e.id for e in estimates}
    ranges = {"temp": 10.0, "cost": 100.0}
    for e in estimates:  # errors within 3 % of the quantity's range
        scale = ranges.get(getattr(e, "variable", None), 1.0)
        assert sat[e.id]["error"] < 0.03 * scale, (e.id, sat[e.id])
    assert sat["cost|wind"]["achieved"] == pytest.approx(60.0, abs=2.0)
    for key in ("n_variables", "n_estimates", "n_factors", "history", "bin_edges_list"):
        assert key in info
    assert info["history"]["skipped_constraints"] == []
    assert len(info["history"]["max_error"]) == FAST.num_iterations
    json.dumps(info)  # the diagnostics are plain JSON


def test_bad_input_raises_with_a_clear_message():
    a = BinaryVariable(name="a")
    p = ProbabilityEstimate(
        id="x", proposition=EqualityProposition(variable="a"), probability=0.2
    )
    with pytest.raises(ValueError, match="duplicate ids"):
        DistributionBuilder([a], [p, p], FAST)
    ghost = ProbabilityEstimate(
        id="g", proposition=EqualityProposition(variable="b"), probability=0.2
    )
    with pytest.raises(
        ValueError, match=r"unknown variable 'b'; known variables: \['a'\]"
    ):
        DistributionBuilder([a], [ghost], FAST)
    with pytest.raises(ValueError, match="outside the domain"):
        DistributionBuilder(
            [a], [ExpectationEstimate(id="e", variable="a", expected_value=2.0)], FAST
        )
    with pytest.raises(
        ValueError, match=r"target_variable 'z' is not a variable; known: \['a'\]"
    ):
        DistributionBuilder([a], [p], FAST).build("z")
    for field, value in [
        ("num_chains", 0),
        ("learning_rate", -1.0),
        ("optimizer", "rmsprop"),
        ("average_fraction", 1.0),
        ("temperature", 0.0),
        ("extra_field", 1),
    ]:
        with pytest.raises(ValueError, match=field):
            SMMConfig(**{field: value})


def test_contradictory_estimates_stay_finite_and_are_reported():
    a = BinaryVariable(name="a")
    estimates = [
        ProbabilityEstimate(
            id="high", proposition=EqualityProposition(variable="a"), probability=0.9
        ),
        ProbabilityEstimate(
            id="low", proposition=EqualityProposition(variable="a"), probability=0.1
        ),
    ]
    cfg = SMMConfig(num_iterations=300, num_chains=256, logit_clip=5.0, progress=False)
    dist, info = DistributionBuilder([a], estimates, cfg).build()
    p_true = dist.bin_probabilities[1]
    assert np.isfinite(p_true) and 0.2 < p_true < 0.8
    sat = info["constraint_satisfaction"]
    assert sat["high"]["error"] > 0.1 and sat["low"]["error"] > 0.1


def test_no_estimates_gives_uniform_marginals():
    a = BinaryVariable(name="a")
    dist, info = DistributionBuilder([a], [], FAST).build()
    assert dist.bin_probabilities == pytest.approx((0.5, 0.5), abs=0.05)
    assert info["constraint_satisfaction"] == {}
