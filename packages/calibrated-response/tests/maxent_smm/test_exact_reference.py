"""Adapted constraints fitted by jax_smm match an exact max-ent solution."""

import numpy as np
from calibrated_response.maxent_smm import adapt
from calibrated_response.models import (
    BinaryVariable,
    ConditionalExpectationEstimate,
    ConditionalProbabilityEstimate,
    ContinuousVariable,
    EqualityProposition,
    ExpectationEstimate,
    InequalityProposition,
    ProbabilityEstimate,
)

from jax_smm import (
    SMMConfig,
    build_targets_from_marginals,
    exact_variable_marginals,
    fit_smm,
)

BINS = 5
VARIABLES = [
    BinaryVariable(name="rain"),
    BinaryVariable(name="wind"),
    ContinuousVariable(name="temp", lower_bound=0.0, upper_bound=10.0),
    ContinuousVariable(name="cost", lower_bound=0.0, upper_bound=100.0),
]
RAIN, NO_RAIN = (EqualityProposition(variable="rain", value=v) for v in (True, False))
WIND, NO_WIND = (EqualityProposition(variable="wind", value=v) for v in (True, False))
HOT = InequalityProposition(variable="temp", threshold=5.0, is_lower_bound=True)
ESTIMATES = [
    ProbabilityEstimate(id="p_rain", proposition=RAIN, probability=0.3),
    ConditionalProbabilityEstimate(
        id="hot|rain", proposition=HOT, conditions=[RAIN], probability=0.8
    ),
    ConditionalProbabilityEstimate(
        id="hot|dry", proposition=HOT, conditions=[NO_RAIN], probability=0.4
    ),
    ProbabilityEstimate(id="p_wind", proposition=WIND, probability=0.5),
    ConditionalExpectationEstimate(
        id="cost|wind", variable="cost", conditions=[WIND], expected_value=60.0
    ),
    ConditionalExpectationEstimate(
        id="cost|calm", variable="cost", conditions=[NO_WIND], expected_value=30.0
    ),
    ConditionalProbabilityEstimate(
        id="wind|rain,hot", proposition=WIND, conditions=[RAIN, HOT], probability=0.9
    ),
    ExpectationEstimate(id="e_temp", variable="temp", expected_value=5.3),
]


def test_fit_matches_the_exact_maxent_solution(reference):
    problem = adapt(VARIABLES, ESTIMATES, max_bins=BINS)
    assert problem.skipped == ()
    targets = build_targets_from_marginals(problem.graph, {}, problem.constraints)
    config = SMMConfig(
        num_iterations=800, num_chains=512, learning_rate=0.05, progress=False
    )
    fitted, _ = fit_smm(problem.graph, targets, config)
    got = exact_variable_marginals(fitted)
    want, residuals = reference(VARIABLES, ESTIMATES, BINS)
    np.testing.assert_allclose(residuals, 0.0, atol=1e-5)  # the reference is feasible
    for g, w in zip(got, want):
        assert 0.5 * np.abs(g - w).sum() < 0.03
    # laws of total probability and expectation, on the fitted model
    temp, cost = got[2], got[3]
    p_hot = temp[3:].sum() + 0.5 * temp[2]
    assert abs(p_hot - (0.3 * 0.8 + 0.7 * 0.4)) < 0.02
    assert abs(cost @ np.array([10, 30, 50, 70, 90]) - 0.5 * (60 + 30)) < 1.5
