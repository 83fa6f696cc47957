"""Bad input gets a clear error (the issue's audit of calibrated-response)."""

import pytest
from pydantic import ValidationError

from calibrated_response.io import write_output_set
from calibrated_response.maxent_smm import DistributionBuilder, SMMConfig, adapt
from calibrated_response.models import (
    BinaryVariable,
    ConditionalProbabilityEstimate,
    ContinuousVariable,
    EqualityProposition,
    HistogramDistribution,
    InequalityProposition,
    ProbabilityEstimate,
)

RAIN = BinaryVariable(name="rain")
TEMP = ContinuousVariable(name="temp", lower_bound=0, upper_bound=30)
WET = EqualityProposition(variable="rain", value=True)


def above(t):
    return InequalityProposition(variable="temp", threshold=t, is_lower_bound=True)


def below(t):
    return InequalityProposition(variable="temp", threshold=t, is_lower_bound=False)


@pytest.mark.parametrize(
    "conditions", [(above(20), below(10)), (above(35),)], ids=["empty", "above-bound"]
)
def test_an_impossible_condition_is_skipped_with_its_reason(conditions):
    estimate = ConditionalProbabilityEstimate(
        id="c", proposition=WET, conditions=conditions, probability=0.5
    )
    problem = adapt([RAIN, TEMP], [estimate], 10)
    assert problem.constraints == ()
    assert "conditions are impossible" in problem.skipped[0].reason
    impossible = ProbabilityEstimate(id="p", proposition=above(40), probability=0.2)
    assert "event is impossible" in adapt([TEMP], [impossible], 10).skipped[0].reason


@pytest.mark.parametrize("low, high", [(-1e39, 1e39), (1.0, 1.0 + 1e-12)])
def test_ranges_float32_cannot_hold_are_refused(low, high):
    wide = ContinuousVariable(name="x", lower_bound=low, upper_bound=high)
    with pytest.raises(ValueError, match=r"'x'.*not representable in float32"):
        DistributionBuilder([wide], [])


def test_config_values_are_validated_not_coerced():
    for bad in (
        {"learning_rate": "0.1"},
        {"seed": None},
        {"seed": 2**40},
        {"seed": -1},
        {"max_bins": 10**6},
        {"num_chains": 2.5},
        {"unknown": 1},
    ):
        with pytest.raises(ValidationError):
            SMMConfig(**bad)
    builder = DistributionBuilder(
        [{"type": "binary", "name": "rain"}],
        [
            {
                "id": "p",
                "estimate_type": "probability",
                "probability": 0.3,
                "proposition": {"proposition_type": "equality", "variable": "rain"},
            }
        ],
        {"num_iterations": 10},
    )
    assert builder.variables == [RAIN] and builder.config.num_iterations == 10
    with pytest.raises(TypeError, match="estimates must be a list, got NoneType"):
        DistributionBuilder([RAIN], None)
    with pytest.raises(TypeError, match=r"variables\[0\] must be a model or a dict"):
        DistributionBuilder(["rain"], [])
    with pytest.raises(TypeError, match="config must be an SMMConfig or a dict"):
        DistributionBuilder([RAIN], [], config=[1])


def test_tables_that_cannot_fit_are_refused_before_allocating():
    xs = [ContinuousVariable(name=n, lower_bound=0, upper_bound=1) for n in ("a", "b")]
    estimate = ConditionalProbabilityEstimate(
        id="big",
        proposition=InequalityProposition(variable="a", threshold=0.5),
        conditions=(
            InequalityProposition(variable="b", threshold=0.5),
            above(3),
        ),
        probability=0.5,
    )
    with pytest.raises(ValueError, match=r"1,000,000,000 cells.*lower max_bins"):
        DistributionBuilder([*xs, TEMP], [estimate], SMMConfig(max_bins=1000))


def test_chains_that_cannot_fit_are_refused_before_allocating():
    builder = DistributionBuilder(
        [RAIN],
        [ProbabilityEstimate(id="p", proposition=WET, probability=0.3)],
        SMMConfig(num_chains=10**9, progress=False),
    )
    with pytest.raises(ValueError, match="num_chains"):
        builder.fit()


def test_negative_sample_weights_name_the_weights():
    with pytest.raises(ValueError, match="weights must be finite and >= 0"):
        HistogramDistribution.from_samples([0.2, 0.7], [0, 0.5, 1], [1.0, -1.0])


def test_a_failed_output_set_leaves_the_previous_one_intact(tmp_path):
    write_output_set(tmp_path, {"a.json": lambda p: p.write_text("old a")})

    def fail(path):
        path.write_text("half")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        write_output_set(
            tmp_path,
            {"a.json": lambda p: p.write_text("new a"), "b.png": fail},
        )
    assert (tmp_path / "a.json").read_text() == "old a"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]
