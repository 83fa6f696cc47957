"""FittedDistribution: queries against hand-written enumeration, sampling, files."""

import json

import numpy as np
import pytest

from calibrated_response.maxent_smm import (
    DistributionBuilder,
    FittedDistribution,
    SMMConfig,
)
from calibrated_response.models import (
    BinaryVariable,
    ConditionalExpectationEstimate,
    ConditionalProbabilityEstimate,
    ContinuousVariable,
    EqualityProposition,
    InequalityProposition,
    ProbabilityEstimate,
)
from jax_smm.diagnostics import enumerate_joint

A = EqualityProposition(variable="a", value=True)
NOT_B = EqualityProposition(variable="b", value=False)
B = EqualityProposition(variable="b", value=True)


def x_above(t):
    return InequalityProposition(variable="x", threshold=t, is_lower_bound=True)


def x_below(t):
    return InequalityProposition(variable="x", threshold=t, is_lower_bound=False)


@pytest.fixture(scope="module")
def fitted():
    variables = [
        BinaryVariable(name="a"),
        BinaryVariable(name="b"),
        ContinuousVariable(name="x", lower_bound=0.0, upper_bound=10.0),
    ]
    estimates = [
        ProbabilityEstimate(id="pa", proposition=A, probability=0.3),
        ConditionalProbabilityEstimate(
            id="pb|a", proposition=B, conditions=(A,), probability=0.8
        ),
        ConditionalExpectationEstimate(
            id="ex|a", variable="x", conditions=(A,), expected_value=7.0
        ),
        ConditionalProbabilityEstimate(
            id="x>5|notb",
            proposition=x_above(5.0),
            conditions=(NOT_B,),
            probability=0.2,
        ),
    ]
    config = SMMConfig(max_bins=4, num_iterations=400, num_chains=256, progress=False)
    return DistributionBuilder(variables, estimates, config).fit()


def reference(fitted):
    """Joint probabilities and hand-written per-cell weights of the 2x2x4 joint."""
    configs, probs = enumerate_joint(fitted.model.graph)
    a, b, xbin = configs[:, 0], configs[:, 1], configs[:, 2]
    lo, hi = 2.5 * xbin, 2.5 * (xbin + 1)  # bins of width 2.5 on [0, 10]

    def frac_above(t):
        return np.clip((hi - np.maximum(lo, t)) / 2.5, 0, 1)

    return probs, a, b, lo, hi, frac_above


def test_queries_match_a_hand_enumeration_of_the_binned_joint(fitted):
    probs, a, b, lo, hi, above = reference(fitted)
    # P(b | a, x > 6): x > 6 covers 40 % of bin 2 and all of bin 3
    cond = probs * a * above(6.0)
    expected = float(np.sum(cond * b) / np.sum(cond))
    got = fitted.probability(B, given=[A, x_above(6.0)])
    assert got.method == "exact" and got.stderr == 0.0
    assert got.value == pytest.approx(expected, rel=1e-9)
    # E[x | not b, x < 6]: mean of the allowed part of each bin
    part_hi = np.minimum(hi, 6.0)
    inside = np.clip(part_hi - lo, 0, None) / 2.5
    mean_part = np.where(inside > 0, 0.5 * (lo + part_hi), 0.0)
    w = probs * (1 - b) * inside
    expected = float(np.sum(w * mean_part) / np.sum(w))
    assert fitted.expectation("x", given=[NOT_B, x_below(6.0)]).value == (
        pytest.approx(expected, rel=1e-9)
    )
    # the fit honors its estimates (exactly evaluated)
    assert fitted.probability(A).value == pytest.approx(0.3, abs=0.02)
    assert fitted.probability(B, given=A).value == pytest.approx(0.8, abs=0.02)
    assert fitted.expectation("x", given=A).value == pytest.approx(7.0, abs=0.2)
    assert fitted.query("P(b | a)").value == fitted.probability(B, A).value


def test_monte_carlo_agrees_with_exact_within_its_error_also_for_rare_conditions(
    fitted,
):
    probs, _, b, _, _, above = reference(fitted)
    rare = [NOT_B, x_above(9.0)]
    p_rare = float(np.sum(probs * (1 - b) * above(9.0)))
    assert p_rare < 0.05  # a condition of probability below 5 %
    for answer_of in (
        lambda **k: fitted.probability(A, given=rare, **k),
        lambda **k: fitted.expectation("x", given=[A, x_above(3.0)], **k),
        lambda **k: fitted.probability([A, B, x_above(5.0)], **k),
    ):
        exact = answer_of(method="exact")
        mc = answer_of(method="monte carlo", n=40_000, seed=3)
        assert mc.method == "monte carlo" and mc.samples == 40_000
        assert 0 < mc.stderr < 0.05 * max(abs(exact.value), 1)
        assert abs(mc.value - exact.value) < 4 * mc.stderr + 1e-3


def test_samples_reproduce_the_exact_marginals_in_user_units(fitted):
    probs, a, b, lo, _, _ = reference(fitted)
    draws = fitted.sample(20_000, seed=1)
    assert draws["a"].dtype == bool and draws["x"].dtype == np.float64
    assert ((draws["x"] >= 0) & (draws["x"] <= 10)).all()
    n = len(draws["a"])
    for name, column in (("a", a), ("b", b)):
        p = float(probs @ column)
        assert abs(draws[name].mean() - p) < 5 * np.sqrt(p * (1 - p) / n) + 0.01
    counts = np.histogram(draws["x"], bins=[0, 2.5, 5, 7.5, 10])[0] / n
    exact = np.bincount((lo / 2.5).astype(int), weights=probs, minlength=4)
    np.testing.assert_allclose(counts, exact, atol=5 * np.sqrt(0.25 / n) + 0.01)


def test_save_load_answers_and_samples_the_same(fitted, tmp_path):
    fitted.save(tmp_path / "dist")
    again = FittedDistribution.load(tmp_path / "dist")
    assert again.constraint_report() == fitted.constraint_report()
    assert again.marginal("x") == fitted.marginal("x")
    query = "P(x > 4 | a, not b)"
    assert again.query(query).value == fitted.query(query).value
    mc = {"method": "monte carlo", "n": 2000, "seed": 5}
    assert again.query(query, **mc) == fitted.query(query, **mc)
    first, second = fitted.sample(100, seed=9), again.sample(100, seed=9)
    for name in first:
        np.testing.assert_array_equal(first[name], second[name])


def test_bad_queries_and_files_get_clear_errors(fitted, tmp_path):
    with pytest.raises(ValueError, match="unknown variable 'snow'"):
        fitted.probability(EqualityProposition(variable="snow"))
    with pytest.raises(ValueError, match="probability 0 under the model"):
        fitted.probability(A, given=x_above(10.0))
    with pytest.raises(ValueError, match="inequality on binary variable 'a'"):
        fitted.probability(InequalityProposition(variable="a", threshold=0.5))
    with pytest.raises(ValueError, match="no draw satisfies"):
        fitted.probability(A, given=x_above(10.0), method="monte carlo", n=100)
    with pytest.raises(ValueError, match="n must be a positive int"):
        fitted.sample(0)
    with pytest.raises(TypeError, match="parse text with query"):
        fitted.probability("P(a)")
    with pytest.raises(ValueError, match="holds no fitted distribution"):
        FittedDistribution.load(tmp_path)
    (tmp_path / "distribution.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="is not a calibrated-response-distribution"):
        FittedDistribution.load(tmp_path)
    fitted.save(tmp_path / "ok")
    header = json.loads((tmp_path / "ok" / "distribution.json").read_text())
    header["version"] = 99
    (tmp_path / "ok" / "distribution.json").write_text(json.dumps(header))
    with pytest.raises(ValueError, match="version 99"):
        FittedDistribution.load(tmp_path / "ok")
