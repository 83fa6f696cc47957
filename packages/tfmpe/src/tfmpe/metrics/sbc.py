"""Simulation-based calibration (Talts et al. 2018).

For ground truths ``theta*`` drawn from the prior and data simulated from
them, the rank of each coordinate of ``theta*`` among ``L`` posterior samples
is uniform on ``{0, ..., L}`` when the posterior is calibrated. Too-narrow
posteriors pile ranks at the ends; biased ones at one end.
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def sbc_ranks(truths: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """Rank of every truth among its posterior samples.

    Parameters
    ----------
    truths : array
        ``(N, dim)`` ground truths.
    samples : array
        ``(L, N, dim)`` posterior samples for each truth's data.

    Returns
    -------
    np.ndarray
        ``int[N, dim]`` in ``[0, L]``.

    Raises
    ------
    ValueError
        For mismatched shapes.
    """
    truths, samples = np.asarray(truths), np.asarray(samples)
    if samples.ndim != 3 or samples.shape[1:] != truths.shape:
        raise ValueError(
            f"samples must be (L, *truths.shape) = (L, {truths.shape}), got "
            f"{samples.shape}"
        )
    return np.sum(samples < truths[None], axis=0)


def sbc_uniformity(ranks: np.ndarray, n_samples: int, bins: int = 10) -> np.ndarray:
    """Chi-square p-value of the uniformity of each coordinate's ranks.

    Parameters
    ----------
    ranks : array
        ``int[N, dim]`` from :func:`sbc_ranks`.
    n_samples : int
        ``L``, the posterior samples per truth.
    bins : int
        Equal-width bins over ``[0, L]``.

    Returns
    -------
    np.ndarray
        ``(dim,)`` p-values; small values reject calibration.
    """
    ranks = np.asarray(ranks)
    edges = np.linspace(0, n_samples + 1, bins + 1)
    p_values = []
    for column in ranks.T:
        counts, _ = np.histogram(column, edges)
        p_values.append(stats.chisquare(counts).pvalue)
    return np.asarray(p_values)
