"""Maximum-entropy distributions from estimates, fitted by jax_smm."""

from calibrated_response.maxent_smm.adapters import (
    AdaptedProblem,
    SkippedConstraint,
    adapt,
    estimate_to_constraint,
)

__all__ = ["AdaptedProblem", "SkippedConstraint", "adapt", "estimate_to_constraint"]
