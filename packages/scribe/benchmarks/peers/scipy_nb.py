"""Float64 SciPy reference of the NB log-probability and its gradient.

numpyro's ``NegativeBinomialProbs(r, p)`` is scipy's ``nbinom(r, 1 - p)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from scipy import special, stats

LARGE_K_MAX = 1e5
LARGE_R_RANGE = (1e-2, 1e3)
LARGE_P_VALUES = (0.01, 0.3, 0.7, 0.9, 0.99)
PLAUSIBLE_LOG_PROB = -100.0


def reference_value_and_grad(
    counts: np.ndarray, r: np.ndarray, p: float
) -> tuple[float, np.ndarray, float]:
    """Float64 sum of NB log-probabilities and its gradient w.r.t. ``(r, p)``.

    Parameters
    ----------
    counts : ndarray
        ``[cells, genes]``.
    r : ndarray
        ``[genes]``.
    p : float
        numpyro's success probability (scipy's is ``1 - p``).

    Returns
    -------
    value : float
    grad_r : ndarray
        ``sum_c digamma(k + r) - digamma(r) + log(1 - p)``.
    grad_p : float
        ``sum k / p - cells * sum_g r_g / (1 - p)``.
    """
    k = counts.astype(np.float64)
    value = float(np.sum(stats.nbinom.logpmf(k, r, 1.0 - p)))
    cells = k.shape[0]
    grad_r = np.sum(special.digamma(k + r), axis=0) - cells * (
        special.digamma(r) - np.log1p(-p)
    )
    grad_p = float(np.sum(k) / p - cells * np.sum(r) / (1.0 - p))
    return value, grad_r, grad_p


def large_count_accuracy(
    implementations: Mapping[str, Callable[..., jax.Array]],
) -> dict[str, Any]:
    """Float32 log-probabilities on a grid of large counts vs scipy float64.

    Parameters
    ----------
    implementations : mapping of str to callable
        ``fn(k, r, p)``, elementwise log-probability, jitted here.

    Returns
    -------
    dict
        The grid and, per implementation, ``max_abs_error``, where it occurs
        (``at_k``, ``at_r``, ``at_p``, ``reference_at_max``),
        ``max_error_relative_to_max1_abs_ref`` and the same over the plausible
        points (``log P >= -100``).
    """
    k = np.concatenate([[0.0], np.round(np.logspace(0.0, math.log10(LARGE_K_MAX), 41))])
    r = np.logspace(*np.log10(LARGE_R_RANGE), 26)
    p = np.asarray(LARGE_P_VALUES)
    grid_p, grid_r, grid_k = np.meshgrid(p, r, k, indexing="ij")
    inputs32 = [x.astype(np.float32) for x in (grid_k, grid_r, grid_p)]
    k64, r64, p64 = (x.astype(np.float64) for x in inputs32)
    reference = stats.nbinom.logpmf(k64, r64, 1.0 - p64)
    plausible = reference >= PLAUSIBLE_LOG_PROB
    record: dict[str, Any] = {
        "k_values": k.tolist(),
        "r_range": list(LARGE_R_RANGE),
        "r_points": int(r.size),
        "p_values": list(LARGE_P_VALUES),
        "reference": "scipy.stats.nbinom.logpmf float64 at the float32 inputs",
        "plausible": f"points with reference log P >= {PLAUSIBLE_LOG_PROB:g}",
        "plausible_points": int(np.sum(plausible)),
    }
    for name, fn in implementations.items():
        got = np.asarray(jax.jit(fn)(*(jnp.asarray(x) for x in inputs32)), np.float64)
        error = np.abs(got - reference)
        at = np.unravel_index(int(np.argmax(error)), error.shape)
        record[name] = {
            "max_abs_error": float(error[at]),
            "at_k": float(k64[at]),
            "at_r": float(r64[at]),
            "at_p": float(p64[at]),
            "reference_at_max": float(reference[at]),
            "max_error_relative_to_max1_abs_ref": float(
                np.max(error / np.maximum(1.0, np.abs(reference)))
            ),
            "max_abs_error_plausible": float(np.max(error[plausible])),
            "all_finite": bool(np.all(np.isfinite(got))),
        }
    return record
