"""Composable NumPyro model and guide builders for single-cell count models."""

from scribe.data import CountData, as_count_data
from scribe.inference import fit, run_svi
from scribe.io import load
from scribe.results import ScribeResults

__all__ = ["CountData", "ScribeResults", "as_count_data", "fit", "load", "run_svi"]
