"""Adapted constraints fitted by jax_smm match an exact max-ent solution."""

import numpy as np

from calibrated_response.maxent_smm import adapt
from jax_smm import (
    SMMConfig,
    build_targets_from_marginals,
    exact_variable_marginals,
    fit_smm,
)


def test_fit_matches_the_exact_maxent_solution(reference, weather):
    variables, estimates, bins = weather
    problem = adapt(variables, estimates, max_bins=bins)
    assert problem.skipped == ()
    targets = build_targets_from_marginals(problem.graph, {}, problem.constraints)
    config = SMMConfig(
        num_iterations=800, num_chains=512, learning_rate=0.05, progress=False
    )
    fitted, _ = fit_smm(problem.graph, targets, config)
    got = exact_variable_marginals(fitted)
    want, residuals = reference(variables, estimates, bins)
    np.testing.assert_allclose(residuals, 0.0, atol=1e-5)  # the reference is feasible
    for g, w in zip(got, want):
        assert 0.5 * np.abs(g - w).sum() < 0.03
    # laws of total probability and expectation, on the fitted model
    temp, cost = got[2], got[3]
    p_hot = temp[3:].sum() + 0.5 * temp[2]
    assert abs(p_hot - (0.3 * 0.8 + 0.7 * 0.4)) < 0.02
    assert abs(cost @ np.array([10, 30, 50, 70, 90]) - 0.5 * (60 + 30)) < 1.5
