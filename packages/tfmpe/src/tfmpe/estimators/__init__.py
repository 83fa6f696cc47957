"""Posterior estimators that consume ``Tokens``."""

from tfmpe.estimators.flow_matching import FlowMatchingEstimator, key_statistics
from tfmpe.estimators.training import FitHistory, fit

__all__ = ["FitHistory", "FlowMatchingEstimator", "fit", "key_statistics"]
