"""Builders: parameter specs, ``ModelBuilder`` and ``GuideBuilder``."""

from scribe.models.builders.guide_builder import GuideBuilder, setup_guide
from scribe.models.builders.model_builder import ModelBuilder, ModelConfig
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
    "GuideBuilder",
    "LatentSpec",
    "LogNormalSpec",
    "ModelBuilder",
    "ModelConfig",
    "ParamSpec",
    "SigmoidNormalSpec",
    "SoftplusNormalSpec",
    "sample_prior",
    "setup_guide",
]
