"""Propositions about variables and the estimates people state about them.

A proposition is an event about one variable: ``A = True`` (equality) or
``X > t`` / ``X < t`` (inequality). Estimates state a probability of a
proposition, an expected value of a variable, or either of these conditional on a
list of propositions read as a conjunction. Every estimate has an ``id`` (unique
within a problem) and an ``estimate_type`` discriminator, so a JSON list of
estimates parses into :data:`EstimateUnion` objects.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EqualityProposition(_Frozen):
    """``variable = value`` (for a binary variable: the event is True or False).

    Parameters
    ----------
    variable : str
        Name of the variable.
    value : bool or float
        The value; ``True``/``False`` for binary variables.
    variable_type : {"binary", "continuous"}
        Type of the variable the proposition was written for.
    """

    proposition_type: Literal["equality"] = "equality"
    variable: str = Field(min_length=1)
    value: bool | float = True
    variable_type: Literal["binary", "continuous"] = "binary"

    def __str__(self) -> str:
        return f"{self.variable} = {self.value}"


class InequalityProposition(_Frozen):
    """``variable > threshold`` (``is_lower_bound=True``) or ``variable < threshold``.

    Parameters
    ----------
    variable : str
        Name of the variable.
    threshold : float
        A finite threshold.
    is_lower_bound : bool
        ``True``: the threshold is a lower bound, i.e. the event is ``X > t``.
    variable_type : {"continuous", "binary"}
        Type of the variable the proposition was written for.
    """

    proposition_type: Literal["inequality"] = "inequality"
    variable: str = Field(min_length=1)
    threshold: float
    is_lower_bound: bool = True
    variable_type: Literal["binary", "continuous"] = "continuous"

    @field_validator("threshold")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("threshold must be finite")
        return value

    def __str__(self) -> str:
        return f"{self.variable} {'>' if self.is_lower_bound else '<'} {self.threshold}"


Proposition = Annotated[
    EqualityProposition | InequalityProposition,
    Field(discriminator="proposition_type"),
]

Probability = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class ProbabilityEstimate(_Frozen):
    """``P(proposition) = probability``."""

    id: str = Field(min_length=1)
    estimate_type: Literal["probability"] = "probability"
    proposition: Proposition
    probability: Probability


class ExpectationEstimate(_Frozen):
    """``E[variable] = expected_value``."""

    id: str = Field(min_length=1)
    estimate_type: Literal["expectation"] = "expectation"
    variable: str = Field(min_length=1)
    expected_value: FiniteFloat


class ConditionalProbabilityEstimate(_Frozen):
    """``P(proposition | all conditions) = probability``."""

    id: str = Field(min_length=1)
    estimate_type: Literal["conditional_probability"] = "conditional_probability"
    proposition: Proposition
    conditions: tuple[Proposition, ...] = Field(min_length=1)
    probability: Probability


class ConditionalExpectationEstimate(_Frozen):
    """``E[variable | all conditions] = expected_value``."""

    id: str = Field(min_length=1)
    estimate_type: Literal["conditional_expectation"] = "conditional_expectation"
    variable: str = Field(min_length=1)
    conditions: tuple[Proposition, ...] = Field(min_length=1)
    expected_value: FiniteFloat


EstimateUnion = Annotated[
    ProbabilityEstimate
    | ExpectationEstimate
    | ConditionalProbabilityEstimate
    | ConditionalExpectationEstimate,
    Field(discriminator="estimate_type"),
]
