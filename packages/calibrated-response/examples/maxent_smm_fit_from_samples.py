"""Estimates read off data and fitted back, compared with the data.

A known process generates 50,000 samples of (rain, temperature, sales). Estimates
are computed on the binned data (so they are exactly consistent); the builder
fits them, and each fitted marginal is compared with the data's own histogram.
Marginals that the estimates pin down match; the rest is max-ent's choice.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from calibrated_response.cli import Problem, plot_marginals
from calibrated_response.maxent_smm import DistributionBuilder, SMMConfig
from calibrated_response.models import (
    BinaryVariable,
    ConditionalExpectationEstimate,
    ConditionalProbabilityEstimate,
    ContinuousVariable,
    EqualityProposition,
    ExpectationEstimate,
    InequalityProposition,
    ProbabilityEstimate,
)

BINS = 10


def samples(n: int, seed: int) -> dict[str, np.ndarray]:
    """Rain, temperature (0-30) and sales (0-100), with rain driving both."""
    rng = np.random.default_rng(seed)
    rain = rng.random(n) < 0.35
    temp = np.clip(rng.normal(np.where(rain, 12, 20), 5), 0, 30)
    sales = np.clip(rng.gamma(np.where(rain, 6, 2), 6), 0, 100)
    return {"rain": rain.astype(float), "temp": temp, "sales": sales}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Fit estimates derived from data; return total variation per variable."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "output")
    parser.add_argument("--iterations", type=int, default=1500)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    data = samples(50_000, 0)
    bounds = {"temp": (0.0, 30.0), "sales": (0.0, 100.0)}
    width = {k: (hi - lo) / BINS for k, (lo, hi) in bounds.items()}
    # binned data: continuous values replaced by their bin's center
    binned = {
        k: np.minimum(np.floor(v / width[k]), BINS - 1) * width[k] + width[k] / 2
        for k, v in data.items()
        if k in bounds
    }
    rain = data["rain"] == 1
    warm = binned["temp"] > 18  # 18 is a bin edge
    variables = [
        BinaryVariable(name="rain"),
        ContinuousVariable(name="temp", lower_bound=0, upper_bound=30),
        ContinuousVariable(name="sales", lower_bound=0, upper_bound=100),
    ]
    is_rain = EqualityProposition(variable="rain")
    estimates = [
        ProbabilityEstimate(id="p_rain", proposition=is_rain, probability=rain.mean()),
        ExpectationEstimate(
            id="e_temp", variable="temp", expected_value=binned["temp"].mean()
        ),
        ConditionalProbabilityEstimate(
            id="warm|rain",
            proposition=InequalityProposition(variable="temp", threshold=18.0),
            conditions=[is_rain],
            probability=warm[rain].mean(),
        ),
        ConditionalExpectationEstimate(
            id="sales|rain",
            variable="sales",
            conditions=[is_rain],
            expected_value=binned["sales"][rain].mean(),
        ),
        ExpectationEstimate(
            id="e_sales", variable="sales", expected_value=binned["sales"].mean()
        ),
    ]
    config = SMMConfig(
        max_bins=BINS, num_iterations=args.iterations, progress=not args.quiet
    )
    builder = DistributionBuilder(variables, estimates, config)
    _, info = builder.build()
    fitted = builder.get_all_marginals(info)
    tv = {}
    for name, hist in fitted.items():
        edges = np.asarray(hist.bin_edges)
        counts, _ = np.histogram(data[name], bins=edges)
        tv[name] = 0.5 * float(np.abs(counts / counts.sum() - hist.probabilities).sum())
    path = args.out / "maxent_smm_fit_from_samples.png"
    plot_marginals(Problem(variables=variables, estimates=estimates), fitted, path)
    if not args.quiet:
        errors = {
            k: round(v["error"], 4) for k, v in info["constraint_satisfaction"].items()
        }
        print(f"constraint errors: {errors}")
        print(
            "total variation, fitted vs data marginal: "
            + ", ".join(f"{k} {v:.3f}" for k, v in tv.items())
        )
        print(f"figure: {path}")
    return {
        "total_variation": tv,
        "constraint_satisfaction": info["constraint_satisfaction"],
    }


if __name__ == "__main__":
    main()
