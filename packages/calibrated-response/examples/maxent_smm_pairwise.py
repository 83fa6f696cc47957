"""Pairwise estimates: a small supply-chain problem with one-condition conditionals.

Fits the maximum-entropy distribution, prints stated vs achieved values and
writes one histogram panel per variable (``--out DIR``, default ``output/``).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from calibrated_response.cli import Problem, fit_problem
from calibrated_response.maxent_smm import SMMConfig
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

STRIKE = EqualityProposition(variable="strike")
LATE = InequalityProposition(variable="delay_days", threshold=7.0)


def problem() -> Problem:
    """Three variables, six estimates; conditionals use one condition each."""
    variables = [
        BinaryVariable(name="strike", description="a port strike this quarter"),
        ContinuousVariable(name="delay_days", lower_bound=0, upper_bound=30),
        ContinuousVariable(name="cost_musd", lower_bound=0, upper_bound=20),
    ]
    estimates = [
        ProbabilityEstimate(id="p_strike", proposition=STRIKE, probability=0.15),
        ExpectationEstimate(id="e_delay", variable="delay_days", expected_value=6.0),
        ConditionalProbabilityEstimate(
            id="late|strike", proposition=LATE, conditions=[STRIKE], probability=0.85
        ),
        ConditionalExpectationEstimate(
            id="cost|late", variable="cost_musd", conditions=[LATE], expected_value=12
        ),
        ExpectationEstimate(id="e_cost", variable="cost_musd", expected_value=5.0),
    ]
    return Problem(variables=variables, estimates=estimates)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Fit, print the constraint table, write the outputs; return the errors."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "output")
    parser.add_argument("--iterations", type=int, default=1500)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    prob = problem().model_copy(
        update={"config": SMMConfig(num_iterations=args.iterations)}
    )
    fitted = fit_problem(
        prob, args.out / "maxent_smm_pairwise", args.quiet, allow_unconverged=True
    )
    info = fitted.info
    return {"constraint_satisfaction": info["constraint_satisfaction"]}


if __name__ == "__main__":
    main()
