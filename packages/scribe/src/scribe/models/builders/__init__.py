"""Builders: parameter specs, ``ModelBuilder`` and ``GuideBuilder``."""

from scribe.models.builders.parameter_specs import (
    BetaPrimeSpec,
    BetaSpec,
    DirichletSpec,
    ExpNormalSpec,
    GaussianLatentSpec,
    LatentSpec,
    LogNormalSpec,
    ParamSpec,
    SigmoidNormalSpec,
    SoftplusNormalSpec,
    sample_prior,
)

__all__ = [
    "BetaPrimeSpec",
    "BetaSpec",
    "DirichletSpec",
    "ExpNormalSpec",
    "GaussianLatentSpec",
    "LatentSpec",
    "LogNormalSpec",
    "ParamSpec",
    "SigmoidNormalSpec",
    "SoftplusNormalSpec",
    "sample_prior",
]
