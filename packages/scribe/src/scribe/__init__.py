"""Composable NumPyro model and guide builders for single-cell count models."""
