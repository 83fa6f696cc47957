"""Maximum-entropy distributions from estimates, fitted by jax_smm."""

from calibrated_response.maxent_smm.adapters import (
    AdaptedProblem,
    SkippedConstraint,
    adapt,
    estimate_to_constraint,
)
from calibrated_response.maxent_smm.config import SMMConfig
from calibrated_response.maxent_smm.distribution_builder import DistributionBuilder
from calibrated_response.maxent_smm.fitted import Answer, FittedDistribution

__all__ = [
    "AdaptedProblem",
    "Answer",
    "DistributionBuilder",
    "FittedDistribution",
    "SMMConfig",
    "SkippedConstraint",
    "adapt",
    "estimate_to_constraint",
]
