"""Histogram distributions: piecewise-uniform densities on bins.

A :class:`HistogramDistribution` puts probability ``bin_probabilities[i]`` on
``[bin_edges[i], bin_edges[i + 1])``, spread uniformly inside the bin, so its
CDF is piecewise linear. Binary variables use edges ``[0, 0.5, 1]`` with the
second bin meaning True.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

PROBABILITY_TOLERANCE = 1e-6
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class HistogramDistribution(BaseModel):
    """A distribution given by bin edges and bin probabilities.

    Parameters
    ----------
    bin_edges : sequence of float
        Strictly increasing, finite; one more than ``bin_probabilities``.
    bin_probabilities : sequence of float
        Non-negative, summing to 1 (within 1e-6; stored renormalized).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    bin_edges: tuple[FiniteFloat, ...]
    bin_probabilities: tuple[FiniteFloat, ...]

    @model_validator(mode="after")
    def _check(self) -> HistogramDistribution:
        edges = np.asarray(self.bin_edges, np.float64)
        probs = np.asarray(self.bin_probabilities, np.float64)
        if probs.size < 1 or edges.size != probs.size + 1:
            raise ValueError(
                "bin_edges must have exactly one more entry than bin_probabilities "
                f"(got {edges.size} edges, {probs.size} probabilities)"
            )
        if np.any(np.diff(edges) <= 0):
            raise ValueError("bin_edges must be strictly increasing")
        if np.any(probs < 0):
            raise ValueError("bin_probabilities must be non-negative")
        total = probs.sum()
        if abs(total - 1.0) > PROBABILITY_TOLERANCE:
            raise ValueError(
                f"bin_probabilities must sum to 1, they sum to {total:.8g}"
            )
        object.__setattr__(self, "bin_probabilities", tuple((probs / total).tolist()))
        return self

    # ---------------------------------------------------------------- shape

    @property
    def edges(self) -> np.ndarray:
        """Bin edges as an array."""
        return np.asarray(self.bin_edges, np.float64)

    @property
    def probabilities(self) -> np.ndarray:
        """Bin probabilities as an array."""
        return np.asarray(self.bin_probabilities, np.float64)

    @property
    def n_bins(self) -> int:
        """Number of bins."""
        return len(self.bin_probabilities)

    @property
    def bin_centers(self) -> np.ndarray:
        """Midpoint of every bin."""
        return 0.5 * (self.edges[1:] + self.edges[:-1])

    @property
    def bin_widths(self) -> np.ndarray:
        """Width of every bin."""
        return np.diff(self.edges)

    # ----------------------------------------------------------- statistics

    @property
    def mean(self) -> float:
        """Mean of the piecewise-uniform density."""
        return float(self.probabilities @ self.bin_centers)

    @property
    def variance(self) -> float:
        """Variance: between-bin spread plus the within-bin ``width^2 / 12``."""
        second = self.probabilities @ (self.bin_centers**2 + self.bin_widths**2 / 12)
        return float(max(second - self.mean**2, 0.0))

    @property
    def entropy(self) -> float:
        """Differential entropy ``-sum p log(p / width)`` (nats)."""
        p = self.probabilities
        mask = p > 0
        return float(-np.sum(p[mask] * np.log(p[mask] / self.bin_widths[mask])))

    def cdf(self, x: float | np.ndarray) -> float | np.ndarray:
        """``P(X <= x)``, linear inside each bin."""
        cum = np.concatenate([[0.0], np.cumsum(self.probabilities)])
        out = np.interp(x, self.edges, cum, left=0.0, right=1.0)
        return float(out) if np.ndim(out) == 0 else out

    def quantile(self, q: float | np.ndarray) -> float | np.ndarray:
        """Inverse CDF; ``q`` must lie in ``[0, 1]``."""
        q_arr = np.asarray(q, np.float64)
        if np.any((q_arr < 0) | (q_arr > 1)) or not np.all(np.isfinite(q_arr)):
            raise ValueError(f"q must lie in [0, 1], got {q!r}")
        p = self.probabilities
        upper = np.cumsum(p)
        upper[-1] = 1.0
        # The first bin whose cumulative mass reaches q; empty bins never qualify
        # because the bin before them reaches the same mass first.
        i = np.minimum(np.searchsorted(upper, q_arr, side="left"), self.n_bins - 1)
        safe = np.where(p[i] > 0, p[i], 1.0)
        frac = np.clip((q_arr - (upper[i] - p[i])) / safe, 0.0, 1.0)
        out = self.edges[i] + frac * self.bin_widths[i]
        return float(out) if np.ndim(out) == 0 else out

    def prob_less_than(self, threshold: float) -> float:
        """``P(X < threshold)``."""
        return float(self.cdf(threshold))

    def prob_greater_than(self, threshold: float) -> float:
        """``P(X > threshold)``."""
        return 1.0 - float(self.cdf(threshold))

    def sample(
        self, n: int, rng: np.random.Generator | int | None = None
    ) -> np.ndarray:
        """Draw ``n`` values: a bin by its probability, then uniformly inside it."""
        if int(n) < 0:
            raise ValueError(f"n must be >= 0, got {n!r}")
        gen = np.random.default_rng(rng)
        bins = gen.choice(self.n_bins, size=int(n), p=self.probabilities)
        return self.edges[bins] + gen.random(int(n)) * self.bin_widths[bins]

    # -------------------------------------------------------- constructors

    @classmethod
    def uniform(cls, lo: float, hi: float, n_bins: int) -> HistogramDistribution:
        """Uniform distribution on ``[lo, hi]`` with ``n_bins`` equal bins."""
        if int(n_bins) < 1:
            raise ValueError(f"n_bins must be >= 1, got {n_bins!r}")
        edges = np.linspace(lo, hi, int(n_bins) + 1)
        return cls(
            bin_edges=tuple(edges.tolist()),
            bin_probabilities=tuple(np.full(int(n_bins), 1.0 / int(n_bins)).tolist()),
        )

    @classmethod
    def from_samples(
        cls,
        samples: Sequence[float] | np.ndarray,
        bin_edges: Sequence[float] | np.ndarray,
        weights: Sequence[float] | np.ndarray | None = None,
    ) -> HistogramDistribution:
        """Histogram of (weighted) samples on the given edges.

        Samples outside the edges are an error, not silently dropped.
        """
        values = np.asarray(samples, np.float64).ravel()
        edges = np.asarray(bin_edges, np.float64)
        if values.size == 0:
            raise ValueError("samples must not be empty")
        if np.any((values < edges[0]) | (values > edges[-1])) or not np.all(
            np.isfinite(values)
        ):
            raise ValueError(
                f"samples must lie within the edges [{edges[0]}, {edges[-1]}]"
            )
        if weights is not None:
            weights = np.asarray(weights, np.float64).ravel()
            if weights.shape != values.shape:
                raise ValueError(
                    f"weights must have one entry per sample ({values.size}), got "
                    f"{weights.size}"
                )
            if not np.all(np.isfinite(weights)) or np.any(weights < 0):
                raise ValueError("weights must be finite and >= 0")
        counts, _ = np.histogram(values, bins=edges, weights=weights)
        if counts.sum() <= 0:
            raise ValueError("weights must have a positive sum")
        return cls(
            bin_edges=tuple(edges.tolist()),
            bin_probabilities=tuple((counts / counts.sum()).tolist()),
        )
