"""Pydantic models: variables, propositions and estimates, distributions."""

from calibrated_response.models.distribution import HistogramDistribution
from calibrated_response.models.query import (
    ConditionalExpectationEstimate,
    ConditionalProbabilityEstimate,
    EqualityProposition,
    EstimateUnion,
    ExpectationEstimate,
    InequalityProposition,
    ProbabilityEstimate,
    Proposition,
)
from calibrated_response.models.variable import (
    BinaryVariable,
    ContinuousVariable,
    Variable,
    VariableUnion,
)

__all__ = [
    "BinaryVariable",
    "ConditionalExpectationEstimate",
    "ConditionalProbabilityEstimate",
    "ContinuousVariable",
    "EqualityProposition",
    "EstimateUnion",
    "ExpectationEstimate",
    "HistogramDistribution",
    "InequalityProposition",
    "ProbabilityEstimate",
    "Proposition",
    "Variable",
    "VariableUnion",
]
