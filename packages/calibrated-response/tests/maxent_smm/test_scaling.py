"""Spec test: ~100 variables run one training step and one marginal extraction."""

import numpy as np
import pytest

from calibrated_response.maxent_smm import DistributionBuilder, SMMConfig
from calibrated_response.models import (
    BinaryVariable,
    ConditionalProbabilityEstimate,
    ContinuousVariable,
    EqualityProposition,
    ExpectationEstimate,
    InequalityProposition,
)


def test_hundred_variables_one_step():
    rng = np.random.default_rng(0)
    variables = [
        BinaryVariable(name=f"v{i}")
        if i % 2
        else ContinuousVariable(name=f"v{i}", lower_bound=0.0, upper_bound=1.0)
        for i in range(100)
    ]
    estimates = [
        ExpectationEstimate(id=f"e{i}", variable=f"v{i}", expected_value=0.4)
        for i in range(0, 100, 2)
    ]
    for k in range(100):
        i, j = rng.choice(100, 2, replace=False)
        cond = (
            EqualityProposition(variable=f"v{j}")
            if j % 2
            else InequalityProposition(variable=f"v{j}", threshold=0.5)
        )
        prop = (
            EqualityProposition(variable=f"v{i}")
            if i % 2
            else InequalityProposition(variable=f"v{i}", threshold=0.3)
        )
        estimates.append(
            ConditionalProbabilityEstimate(
                id=f"c{k}", proposition=prop, conditions=[cond], probability=0.6
            )
        )
    config = SMMConfig(max_bins=10, num_iterations=1, num_chains=64, progress=False)
    builder = DistributionBuilder(variables, estimates, config)
    dist, info = builder.build("v0")
    marginals = builder.get_all_marginals(info)
    assert len(marginals) == 100 and info["n_estimates"] == 150
    for hist in marginals.values():
        assert sum(hist.bin_probabilities) == pytest.approx(1.0)
    assert dist.n_bins == 10 and len(info["history"]["max_error"]) == 1
