"""The query grammar: literal parses and errors that point at the column."""

import re

import pytest

from calibrated_response.models import (
    BinaryVariable,
    ContinuousVariable,
    EqualityProposition,
    InequalityProposition,
)
from calibrated_response.models.query_parser import QuerySyntaxError, parse_query

VARIABLES = [
    BinaryVariable(name="rain"),
    BinaryVariable(name="wind"),
    ContinuousVariable(name="temp", lower_bound=0, upper_bound=30),
    ContinuousVariable(name="umbrella_sales", lower_bound=0, upper_bound=500),
]


def test_probability_and_expectation_queries_parse_into_the_models():
    q = parse_query("P(temp > 20 | rain)", VARIABLES)
    assert q.kind == "probability"
    assert q.propositions == (
        InequalityProposition(variable="temp", threshold=20.0, is_lower_bound=True),
    )
    assert q.given == (EqualityProposition(variable="rain", value=True),)
    q = parse_query("E( umbrella_sales|rain,not wind )", VARIABLES)
    assert q.kind == "expectation" and q.variable == "umbrella_sales"
    assert q.given == (
        EqualityProposition(variable="rain", value=True),
        EqualityProposition(variable="wind", value=False),
    )
    q = parse_query("P(!rain and temp<=-1.5e1 & wind == 0)", VARIABLES)
    assert q.propositions == (
        EqualityProposition(variable="rain", value=False),
        InequalityProposition(variable="temp", threshold=-15.0, is_lower_bound=False),
        EqualityProposition(variable="wind", value=False),
    )
    assert q.given == ()


@pytest.mark.parametrize(
    "text, column, message",
    [
        ("Q(rain)", 1, "starts with P( or E("),
        ("P rain", 3, "expected '('"),
        ("P(snow)", 3, "unknown variable 'snow'"),
        ("P(temp)", 3, "needs a comparison"),
        ("P(temp = 3)", 8, "has probability 0"),
        ("P(rain > 0.5)", 8, "on binary variable 'rain'"),
        ("P(temp > hot)", 10, "expected a number"),
        ("P(rain = maybe)", 10, "expected true, false, 1 or 0"),
        ("P(rain | wind", 14, "expected ')', found the end"),
        ("P(rain) extra", 9, "unexpected 'extra'"),
        ("P(rain ; wind)", 8, "unexpected ';'"),
        ("E(rain | )", 10, "expected a variable"),
    ],
)
def test_malformed_queries_name_the_column(text, column, message):
    with pytest.raises(QuerySyntaxError, match=re.escape(message)) as err:
        parse_query(text, VARIABLES)
    assert err.value.column == column
    assert str(err.value).endswith(f"\n  {text}\n  {' ' * (column - 1)}^")


def test_a_query_must_be_text():
    with pytest.raises(TypeError, match="query must be a str"):
        parse_query(["P(rain)"], VARIABLES)
