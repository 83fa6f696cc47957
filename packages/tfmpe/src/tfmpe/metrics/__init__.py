"""Posterior quality: classifier two-sample tests and calibration ranks."""

from tfmpe.metrics.c2st import c2st
from tfmpe.metrics.sbc import sbc_ranks, sbc_uniformity

__all__ = ["c2st", "sbc_ranks", "sbc_uniformity"]
