"""An independent exact maximum-entropy reference for small problems."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import logsumexp

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

SUBPOINTS = 400  # points per continuous bin for the in-bin averages


def _points(variable, num_bins):
    """Per bin state: representative values (uniform density inside a bin)."""
    if isinstance(variable, BinaryVariable):
        return [np.array([0.0]), np.array([1.0])]
    low, high = variable.get_domain()
    edges = np.linspace(low, high, num_bins + 1)
    u = (np.arange(SUBPOINTS) + 0.5) / SUBPOINTS
    return [a + u * (b - a) for a, b in itertools.pairwise(edges)]


def _holds(prop, values):
    if isinstance(prop, EqualityProposition):
        return (values == float(prop.value)).astype(float)
    return (
        values > prop.threshold if prop.is_lower_bound else values < prop.threshold
    ).astype(float)


def _feature(estimate, names, points, config):
    """Average of the estimate's integrand over the joint bin ``config``."""

    def average(props, value_var=None, offset=0.0):
        out = 1.0
        for v, name in enumerate(names):
            vals = points[v][config[v]]
            term = np.ones_like(vals)
            for p in props:
                if p.variable == name:
                    term = term * _holds(p, vals)
            if value_var == name:
                term = term * (vals - offset)
            out *= term.mean()
        return out

    if isinstance(estimate, ProbabilityEstimate):
        return average([estimate.proposition]) - estimate.probability
    if isinstance(estimate, ExpectationEstimate):
        return average([], estimate.variable) - estimate.expected_value
    if isinstance(estimate, ConditionalProbabilityEstimate):
        cond = list(estimate.conditions)
        return average([*cond, estimate.proposition]) - estimate.probability * average(
            cond
        )
    if isinstance(estimate, ConditionalExpectationEstimate):
        return average(
            list(estimate.conditions), estimate.variable, estimate.expected_value
        )
    raise TypeError(type(estimate))


def maxent_reference(variables, estimates, num_bins):
    """Maximum-entropy binned joint under the estimates, by the convex dual.

    Returns per-variable marginals (over bins/states) and, per estimate, the
    achieved value of its centered feature (0 when satisfied).
    """
    names = [v.name for v in variables]
    points = [_points(v, num_bins) for v in variables]
    configs = list(itertools.product(*[range(len(p)) for p in points]))
    feats = np.array(
        [[_feature(e, names, points, c) for e in estimates] for c in configs]
    )

    def dual(lam):
        scores = feats @ lam
        lse = logsumexp(scores)
        p = np.exp(scores - lse)
        return lse, feats.T @ p

    res = minimize(
        dual,
        np.zeros(len(estimates)),
        jac=True,
        method="BFGS",
        options={"gtol": 1e-10, "maxiter": 2000},
    )
    if not np.all(np.isfinite(res.x)) or np.abs(res.jac).max() > 1e-6:
        raise AssertionError(
            f"max-ent dual did not converge (infeasible?): {res.message}"
        )
    scores = feats @ res.x
    p = np.exp(scores - logsumexp(scores))
    configs = np.array(configs)
    marginals = [
        np.bincount(configs[:, v], weights=p, minlength=len(points[v]))
        for v in range(len(variables))
    ]
    return marginals, feats.T @ p


@pytest.fixture
def reference():
    return maxent_reference


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


@pytest.fixture
def weather():
    """A 4-variable problem whose totals follow from the estimates.

    P(temp > 5) = 0.3 * 0.8 + 0.7 * 0.4 = 0.52 and E[cost] = (60 + 30) / 2 = 45.
    """
    return VARIABLES, ESTIMATES, BINS
