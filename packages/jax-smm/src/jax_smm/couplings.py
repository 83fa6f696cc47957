"""Coupling strength of every variable pair, as direct-coupling analysis ranks them.

The score of a pair is the Frobenius norm of its pairwise table in the
zero-sum gauge (each row and each column of the centered table sums to zero,
which removes what a unary table could carry), optionally with the average
product correction (APC) of Dunn et al. (2008) that removes the background
each variable contributes to all its pairs. Contact prediction in DCA ranks
pairs by exactly this score.
"""

from __future__ import annotations

import numpy as np

from jax_smm.checks import check_int
from jax_smm.graph import FactorGraph


def zero_sum_gauge(table: np.ndarray) -> np.ndarray:
    """Center a pairwise table: ``J - row means - column means + grand mean``."""
    table = np.asarray(table, np.float64)
    return (
        table
        - table.mean(axis=1, keepdims=True)
        - table.mean(axis=0, keepdims=True)
        + table.mean()
    )


def pair_tables(graph: FactorGraph) -> dict[tuple[int, int], np.ndarray]:
    """The summed pairwise tables of every variable pair ``(i, j)``, ``i < j``.

    Several pair factors over the same two variables add up (their tables are
    transposed to the ``(i, j)`` axis order first); triple factors are left out.
    """
    thetas = graph.thetas
    tables: dict[tuple[int, int], np.ndarray] = {}
    for factor_id, scope in zip(graph.factor_ids, graph.factor_to_vars, strict=True):
        if len(scope) != 2:
            continue
        table = np.asarray(thetas[factor_id], np.float64)
        if scope[0] > scope[1]:
            table = table.T
        key = (min(scope), max(scope))
        tables[key] = tables.get(key, 0.0) + table
    return tables


def coupling_scores(graph: FactorGraph, apc: bool = True) -> np.ndarray:
    """Frobenius norm of every centered pairwise table, APC-corrected.

    Parameters
    ----------
    graph : FactorGraph
    apc : bool
        Apply the average product correction ``F_ij - F_i F_j / F``, where
        ``F_i`` is the mean score of variable ``i`` over all other variables
        and ``F`` the mean over all pairs (pairs without a factor count as 0).

    Returns
    -------
    numpy.ndarray
        ``float64[n, n]``, symmetric; 0 on the diagonal and for pairs without a
        pair factor.
    """
    n = graph.num_vars
    scores = np.zeros((n, n))
    has_pair = np.zeros((n, n), bool)
    for (i, j), table in pair_tables(graph).items():
        scores[i, j] = scores[j, i] = np.linalg.norm(zero_sum_gauge(table))
        has_pair[i, j] = has_pair[j, i] = True
    if apc and n > 2 and scores.sum() > 0:
        row_mean = scores.sum(axis=1) / (n - 1)
        mean = scores.sum() / (n * (n - 1))
        scores = scores - np.outer(row_mean, row_mean) / mean
    return np.where(has_pair, scores, 0.0)


def top_couplings(
    graph: FactorGraph, k: int = 10, apc: bool = True
) -> list[tuple[int, int, float]]:
    """The ``k`` highest-scoring pairs that have a pair factor.

    Returns
    -------
    list of (i, j, score)
        ``i < j``, by decreasing :func:`coupling_scores` (ties by ``(i, j)``).
    """
    k = check_int("k", k, 1)
    scores = coupling_scores(graph, apc)
    pairs = sorted(pair_tables(graph), key=lambda p: (-scores[p], p))
    return [(i, j, float(scores[i, j])) for i, j in pairs[:k]]
