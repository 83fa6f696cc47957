"""Composable NumPyro model and guide builders for single-cell count models."""

from scribe.inference import fit
from scribe.results import ScribeResults

__all__ = ["ScribeResults", "fit"]
