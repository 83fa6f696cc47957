"""Spec test: a small binary problem recovers the exact max-ent moments."""

import numpy as np

from calibrated_response.maxent_smm import DistributionBuilder, SMMConfig
from calibrated_response.models import (
    BinaryVariable,
    ConditionalProbabilityEstimate,
    EqualityProposition,
    ProbabilityEstimate,
)


def test_five_binaries_match_brute_force(reference):
    variables = [BinaryVariable(name=f"b{i}") for i in range(5)]
    is_true = [EqualityProposition(variable=f"b{i}") for i in range(5)]
    # Stated values taken from a Markov chain, so they are jointly feasible:
    # P(b_{i+1} | b_i) = 0.7, P(b_{i+1} | not b_i) = 0.3 (the latter not stated).
    marginal = [0.6]
    for _ in range(4):
        marginal.append(0.7 * marginal[-1] + 0.3 * (1 - marginal[-1]))
    estimates = [
        ProbabilityEstimate(id=f"p{i}", proposition=is_true[i], probability=p)
        for i, p in enumerate(marginal)
    ]
    estimates += [
        ConditionalProbabilityEstimate(
            id=f"c{i}",
            proposition=is_true[i + 1],
            conditions=[is_true[i]],
            probability=0.7,
        )
        for i in range(4)
    ]
    config = SMMConfig(num_iterations=800, num_chains=512, progress=False)
    _, info = DistributionBuilder(variables, estimates, config).build()
    want, residuals = reference(variables, estimates, 2)
    np.testing.assert_allclose(residuals, 0.0, atol=1e-5)
    for name, exact in zip(info["marginals"], want):
        assert np.abs(np.asarray(info["marginals"][name]) - exact).max() < 0.02
    errors = [s["error"] for s in info["constraint_satisfaction"].values()]
    assert max(errors) < 0.03
