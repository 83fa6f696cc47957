"""Uncertain quantities: binary events and bounded continuous variables."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Variable(BaseModel):
    """An uncertain quantity with a unique ``name``.

    Parameters
    ----------
    name : str
        Identifier used by propositions and estimates (non-empty).
    description : str
        Free text (what the quantity means, how it is measured).
    type : {"binary", "continuous"}
        The kind of variable; set by the subclasses.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    description: str = ""
    type: Literal["binary", "continuous"]


class BinaryVariable(Variable):
    """A yes/no event; as a histogram it lives on edges ``[0, 0.5, 1]``, 1 = True."""

    type: Literal["binary"] = "binary"


class ContinuousVariable(Variable):
    """A real quantity bounded to ``[lower_bound, upper_bound]``.

    Parameters
    ----------
    lower_bound, upper_bound : float
        Finite bounds with ``lower_bound < upper_bound``.
    unit : str, optional
        Unit of measurement, for display.
    """

    type: Literal["continuous"] = "continuous"
    lower_bound: float
    upper_bound: float
    unit: str | None = None

    @model_validator(mode="after")
    def _check_bounds(self) -> ContinuousVariable:
        if not (math.isfinite(self.lower_bound) and math.isfinite(self.upper_bound)):
            raise ValueError(
                f"variable {self.name!r}: lower_bound and upper_bound must be finite"
            )
        if self.upper_bound <= self.lower_bound:
            raise ValueError(
                f"variable {self.name!r}: upper_bound ({self.upper_bound}) must be "
                f"greater than lower_bound ({self.lower_bound})"
            )
        return self

    def get_domain(self) -> tuple[float, float]:
        """The interval ``(lower_bound, upper_bound)``."""
        return (self.lower_bound, self.upper_bound)


VariableUnion = Annotated[
    BinaryVariable | ContinuousVariable, Field(discriminator="type")
]
