"""Two-condition estimates: each lives on a factor over three variables.

``P(flood | heavy_rain, levee_breach)`` and ``E[damage | flood, no_insurance]``
need triple factors; the fit honors them exactly like pairwise ones.
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
    ProbabilityEstimate,
)


def _is(name: str, value: bool = True) -> EqualityProposition:
    return EqualityProposition(variable=name, value=value)


def problem() -> Problem:
    """Five variables; two estimates with two conditions each."""
    variables = [
        BinaryVariable(name=n)
        for n in ("heavy_rain", "levee_breach", "flood", "insured")
    ] + [ContinuousVariable(name="damage_musd", lower_bound=0, upper_bound=100)]
    estimates = [
        ProbabilityEstimate(
            id="p_rain", proposition=_is("heavy_rain"), probability=0.2
        ),
        ProbabilityEstimate(
            id="p_breach", proposition=_is("levee_breach"), probability=0.05
        ),
        ProbabilityEstimate(
            id="p_insured", proposition=_is("insured"), probability=0.6
        ),
        ConditionalProbabilityEstimate(
            id="flood|rain,breach",
            proposition=_is("flood"),
            conditions=[_is("heavy_rain"), _is("levee_breach")],
            probability=0.9,
        ),
        ConditionalProbabilityEstimate(
            id="flood|rain",
            proposition=_is("flood"),
            conditions=[_is("heavy_rain")],
            probability=0.3,
        ),
        ConditionalExpectationEstimate(
            id="damage|flood,uninsured",
            variable="damage_musd",
            conditions=[_is("flood"), _is("insured", False)],
            expected_value=60.0,
        ),
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
        prob, args.out / "maxent_smm_triples", args.quiet, allow_unconverged=True
    )
    info = fitted.info
    if not args.quiet:
        print(f"{info['n_factors']} factors for {info['n_variables']} variables")
    return {"constraint_satisfaction": info["constraint_satisfaction"]}


if __name__ == "__main__":
    main()
