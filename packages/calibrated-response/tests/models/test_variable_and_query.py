import math

import pytest
from pydantic import TypeAdapter, ValidationError

from calibrated_response.models import (
    BinaryVariable,
    ConditionalExpectationEstimate,
    ConditionalProbabilityEstimate,
    ContinuousVariable,
    EqualityProposition,
    EstimateUnion,
    ExpectationEstimate,
    InequalityProposition,
    ProbabilityEstimate,
    VariableUnion,
)


def test_continuous_variable_bounds():
    v = ContinuousVariable(name="gdp", lower_bound=-1.0, upper_bound=4.0, unit="%")
    assert v.get_domain() == (-1.0, 4.0)
    with pytest.raises(ValidationError, match="greater than lower_bound"):
        ContinuousVariable(name="x", lower_bound=2.0, upper_bound=2.0)
    with pytest.raises(ValidationError, match="finite"):
        ContinuousVariable(name="x", lower_bound=0.0, upper_bound=math.inf)
    with pytest.raises(ValidationError):
        BinaryVariable(name="")
    assert isinstance(ValidationError, type) and issubclass(ValidationError, ValueError)


def test_variables_are_frozen_and_round_trip():
    variables = [
        BinaryVariable(name="rain", description="it rains tomorrow"),
        ContinuousVariable(name="temp", lower_bound=-10, upper_bound=40, unit="C"),
    ]
    adapter = TypeAdapter(list[VariableUnion])
    assert adapter.validate_json(adapter.dump_json(variables)) == variables
    with pytest.raises(ValidationError):
        variables[0].name = "snow"


def test_estimates_parse_by_discriminator_and_round_trip():
    estimates = [
        ProbabilityEstimate(
            id="a", proposition=EqualityProposition(variable="rain"), probability=0.6
        ),
        ExpectationEstimate(id="b", variable="temp", expected_value=12.5),
        ConditionalProbabilityEstimate(
            id="c",
            proposition=InequalityProposition(variable="temp", threshold=20.0),
            conditions=[EqualityProposition(variable="rain", value=False)],
            probability=0.3,
        ),
        ConditionalExpectationEstimate(
            id="d",
            variable="temp",
            conditions=[
                EqualityProposition(variable="rain"),
                InequalityProposition(
                    variable="temp", threshold=0.0, is_lower_bound=False
                ),
            ],
            expected_value=-3.0,
        ),
    ]
    adapter = TypeAdapter(list[EstimateUnion])
    parsed = adapter.validate_json(adapter.dump_json(estimates))
    assert parsed == estimates
    assert [type(e).__name__ for e in parsed] == [
        "ProbabilityEstimate",
        "ExpectationEstimate",
        "ConditionalProbabilityEstimate",
        "ConditionalExpectationEstimate",
    ]
    assert str(parsed[2].proposition) == "temp > 20.0"
    assert str(parsed[3].conditions[1]) == "temp < 0.0"


@pytest.mark.parametrize("p", [-0.1, 1.5, math.nan])
def test_probability_outside_unit_interval_is_rejected(p):
    with pytest.raises(ValidationError, match="probability"):
        ProbabilityEstimate(
            id="a", proposition=EqualityProposition(variable="r"), probability=p
        )


def test_bad_estimate_json_names_the_path():
    adapter = TypeAdapter(list[EstimateUnion])
    bad = (
        '[{"id": "x", "estimate_type": "conditional_probability", "probability": 0.2,'
        ' "proposition": {"proposition_type": "equality", "variable": "a"},'
        ' "conditions": [{"proposition_type": "inequality", "variable": "b"}]}]'
    )
    with pytest.raises(ValidationError) as err:
        adapter.validate_json(bad)
    assert "conditions.0.inequality.threshold" in str(err.value)
    with pytest.raises(ValidationError, match="conditions"):
        ConditionalExpectationEstimate(
            id="e", variable="t", conditions=[], expected_value=1.0
        )
