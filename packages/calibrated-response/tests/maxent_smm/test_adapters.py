import numpy as np
import pytest

from calibrated_response.maxent_smm import adapt
from calibrated_response.maxent_smm.adapters import merge_equivalent
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

RAIN = BinaryVariable(name="rain")
WIND = BinaryVariable(name="wind")
TEMP = ContinuousVariable(name="temp", lower_bound=0.0, upper_bound=10.0)  # 5 bins of 2
VARS = [RAIN, TEMP, WIND]


def rain(value=True):
    return EqualityProposition(variable="rain", value=value)


def temp_above(t):
    return InequalityProposition(variable="temp", threshold=t, is_lower_bound=True)


def one(estimate):
    problem = adapt(VARS, [estimate], max_bins=5)
    assert not problem.skipped, problem.skipped
    (constraint,) = problem.constraints
    ((num, den),) = problem.readouts

    if constraint.target == 0.0:  # conditional: W = num - stated * den
        assert num.shape == den.shape == constraint.weights.shape
    else:
        np.testing.assert_allclose(num / (np.ptp(num) or 1.0), constraint.weights)
        np.testing.assert_allclose(den, 1.0)
    return constraint


def check(constraint, weights, target=0.0):
    """The constraint equals (weights, target) up to the unit-spread scaling."""
    weights = np.asarray(weights, float)
    scale = np.ptp(weights) or 1.0
    np.testing.assert_allclose(constraint.weights * scale, weights, atol=1e-12)
    assert constraint.target * scale == pytest.approx(target)


def test_probability_of_binary_event():
    c = one(ProbabilityEstimate(id="p", proposition=rain(False), probability=0.3))
    assert c.var_ids == (0,)
    check(c, [1.0, 0.0], 0.3)


def test_threshold_inside_a_bin_counts_the_fraction():
    c = one(ProbabilityEstimate(id="p", proposition=temp_above(5.0), probability=0.4))
    # bins [0,2) [2,4) [4,6) [6,8) [8,10]; 5 splits the middle bin in half
    check(c, [0, 0, 0.5, 1, 1], 0.4)
    below = InequalityProposition(variable="temp", threshold=3.0, is_lower_bound=False)
    c = one(ProbabilityEstimate(id="q", proposition=below, probability=0.4))
    check(c, [1, 0.5, 0, 0, 0], 0.4)


def test_expectations_use_bin_means():
    c = one(ExpectationEstimate(id="e", variable="temp", expected_value=3.0))
    check(c, [1, 3, 5, 7, 9], 3.0)
    c = one(ExpectationEstimate(id="b", variable="rain", expected_value=0.25))
    check(c, [0, 1], 0.25)


def test_conditional_probability_is_homogeneous():
    e = ConditionalProbabilityEstimate(
        id="c", proposition=temp_above(5.0), conditions=[rain()], probability=0.8
    )
    c = one(e)
    assert c.var_ids == (0, 1)
    # rows: rain False / True; W = 1_rain (1_{temp>5} - 0.8)
    check(c, [np.zeros(5), np.array([0, 0, 0.5, 1, 1]) - 0.8])


def test_conditional_on_the_same_variable_intersects():
    # P(temp > 5 | temp > 3) = 0.5: W = 1_{temp>5} - 0.5 * 1_{temp>3} on temp alone
    e = ConditionalProbabilityEstimate(
        id="s",
        proposition=temp_above(5.0),
        conditions=[temp_above(3.0)],
        probability=0.5,
    )
    c = one(e)
    assert c.var_ids == (1,)
    check(c, np.array([0, 0, 0.5, 1, 1]) - 0.5 * np.array([0, 0.5, 1, 1, 1]))


def test_conditional_expectation_with_two_conditions():
    e = ConditionalExpectationEstimate(
        id="x",
        variable="temp",
        conditions=[rain(), EqualityProposition(variable="wind", value=False)],
        expected_value=4.0,
    )
    c = one(e)
    assert c.var_ids == (1, 0, 2)  # the variable, then the conditions in order
    want = np.zeros((5, 2, 2))
    want[:, 1, 0] = np.array([1, 3, 5, 7, 9]) - 4.0
    check(c, want)


def test_conditional_expectation_on_part_of_a_bin():
    # E[temp | temp > 5] = 7: the split bin contributes half its mass at mean 5.5
    e = ConditionalExpectationEstimate(
        id="x", variable="temp", conditions=[temp_above(5.0)], expected_value=7.0
    )
    c = one(e)
    check(c, [0, 0, 0.5 * (5.5 - 7), 7 - 7, 9 - 7])


@pytest.mark.parametrize(
    ("estimate", "reason"),
    [
        (
            ProbabilityEstimate(
                id="u",
                proposition=EqualityProposition(variable="snow"),
                probability=0.1,
            ),
            "unknown variable 'snow'",
        ),
        (
            ProbabilityEstimate(
                id="eq",
                proposition=EqualityProposition(
                    variable="temp", value=3.0, variable_type="continuous"
                ),
                probability=0.1,
            ),
            "equality on continuous variable 'temp' has probability 0",
        ),
        (
            ProbabilityEstimate(
                id="ineq",
                proposition=InequalityProposition(variable="rain", threshold=0.5),
                probability=0.1,
            ),
            "inequality on binary variable 'rain' (use an equality)",
        ),
        (
            ConditionalProbabilityEstimate(
                id="three",
                proposition=rain(),
                probability=0.5,
                conditions=[
                    temp_above(1.0),
                    EqualityProposition(variable="wind"),
                    temp_above(2.0),
                ],
            ),
            "3 conditions (at most 2 are supported)",
        ),
    ],
)
def test_unsupported_forms_are_skipped_with_a_reason(estimate, reason):
    problem = adapt(VARS, [estimate], max_bins=5)
    assert problem.constraints == ()
    assert [(s.estimate_id, s.reason) for s in problem.skipped] == [
        (estimate.id, reason)
    ]


def test_expected_value_outside_domain_raises():
    with pytest.raises(ValueError, match="outside the domain"):
        adapt(
            VARS, [ExpectationEstimate(id="e", variable="temp", expected_value=11)], 5
        )


def test_graph_has_unary_factors_and_one_factor_per_scope():
    estimates = [
        ProbabilityEstimate(id="a", proposition=rain(), probability=0.3),
        ConditionalProbabilityEstimate(
            id="b", proposition=temp_above(5), conditions=[rain()], probability=0.8
        ),
        ConditionalExpectationEstimate(
            id="c", variable="temp", conditions=[rain()], expected_value=6.0
        ),
    ]
    problem = adapt(VARS, estimates, max_bins=5)
    scopes = [f.var_ids for f in problem.graph.factors]
    assert scopes == [(0,), (1,), (2,), (0, 1), (1, 0)][:4] or scopes == [
        (0,),
        (1,),
        (2,),
        (0, 1),
    ]
    assert problem.estimate_ids == ("a", "b", "c")
    np.testing.assert_allclose(problem.bin_edges[1], [0, 2, 4, 6, 8, 10])


def test_equivalent_estimates_share_one_multiplier():
    wind = EqualityProposition(variable="wind", value=True)
    estimates = [
        ProbabilityEstimate(id="p", proposition=rain(), probability=0.3),
        ExpectationEstimate(id="e", variable="rain", expected_value=0.3),
        ProbabilityEstimate(id="not", proposition=rain(False), probability=0.7),
        ProbabilityEstimate(id="other", proposition=rain(), probability=0.4),
        ConditionalProbabilityEstimate(
            id="c1",
            proposition=rain(),
            conditions=[wind, temp_above(5.0)],
            probability=0.6,
        ),
        ConditionalProbabilityEstimate(
            id="c2",
            proposition=rain(),
            conditions=[temp_above(5.0), wind],
            probability=0.6,
        ),
        ConditionalProbabilityEstimate(
            id="c3", proposition=rain(), conditions=[wind], probability=0.6
        ),
    ]
    problem = adapt(VARS, estimates, max_bins=5)
    distinct, index = merge_equivalent(problem.constraints)
    assert index == (0, 0, 0, 1, 2, 2, 3)
    assert [c.name for c in distinct] == ["p", "other", "c1", "c3"]
