"""The RF00379 alignment and its Potts model, for ``bench_fit_rf00379.py``.

The alignment (read, encoded and reweighted by ``msa``), the fully connected
Potts graph, the fast connected correlations and the noise ceiling
of a one-state-per-chain estimate; :func:`prepare` runs the data steps in order.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from msa import (
    ALPHABET,
    IDENTITY_THRESHOLD,
    encode_alignment,
    read_fasta,
    sequence_weights,
)

from jax_smm import (
    Factor,
    FactorGraph,
    Targets,
    Variable,
    build_targets_from_samples,
    connected_correlations,
    estimate_moments,
)

EXPECTED_SHAPE = (3827, 136)


# -------------------------------------------------------------------------- model


def build_potts_graph(length: int, num_states: int) -> FactorGraph:
    """A fully connected Potts factor graph with zero parameters.

    Parameters
    ----------
    length : int
        Number of columns (variables).
    num_states : int
        States per variable.

    Returns
    -------
    FactorGraph
        Unary factors with ids ``0 .. length - 1`` (column ``i``), then one pair
        factor per column pair ``i < j`` in row-major order.
    """
    variables = [Variable.categorical(f"col{i}", num_states) for i in range(length)]
    factors = [Factor(i, (i,), np.zeros(num_states)) for i in range(length)]
    pair_shape = (num_states, num_states)
    for i in range(length):
        for j in range(i + 1, length):
            factors.append(Factor(len(factors), (i, j), np.zeros(pair_shape)))
    return FactorGraph(variables, factors)


def pair_cc_fn(
    length: int, num_states: int
) -> Callable[[dict[str, jax.Array]], np.ndarray]:
    """Connected correlations of every column pair from a batch of states.

    What ``connected_correlations(graph, estimate_moments(graph, states))``
    returns for :func:`build_potts_graph` (pair factors ``i < j`` in row-major
    order, single-site frequencies from each pair table's margins), computed as
    one one-hot Gram matrix under ``jit``.

    Parameters
    ----------
    length : int
        Number of columns.
    num_states : int
        States per column.

    Returns
    -------
    callable
        ``states -> float64[pairs * K * K]``, ``states["cat"]`` being
        ``int[N, length]``.
    """
    first, second = np.triu_indices(length, 1)

    @jax.jit
    def cc(cat: jax.Array) -> jax.Array:
        onehot = jax.nn.one_hot(cat, num_states, dtype=jnp.float32)
        onehot = onehot.reshape(cat.shape[0], length * num_states)
        freq = (onehot.T @ onehot) / cat.shape[0]
        freq = freq.reshape(length, num_states, length, num_states)
        pair = freq[first, :, second, :]  # (pairs, K, K)
        margins = pair.sum(2)[:, :, None] * pair.sum(1)[:, None, :]
        return (pair - margins).ravel()

    return lambda states: np.asarray(cc(jnp.asarray(states["cat"])), np.float64)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two vectors."""
    return float(np.corrcoef(a, b)[0, 1])


def snapshot_ceiling(
    seqs: np.ndarray,
    weights: np.ndarray,
    num_samples: int,
    model_cc: Callable[[dict[str, jax.Array]], np.ndarray],
    target_cc: np.ndarray,
    repeats: int = 3,
    seed: int = 0,
) -> list[float]:
    """The Pearson a perfect model would score from ``num_samples`` states.

    The callback sees one state per chain, so the model's connected correlations
    carry sampling noise and even a model equal to the data cannot reach a
    Pearson of 1. Drawing ``num_samples`` sequences from the reweighted data
    itself and scoring them like chain states measures that ceiling.

    Parameters
    ----------
    seqs : int[N, L]
        The alignment.
    weights : float[N]
        Sequence weights (sampling probabilities up to normalization).
    num_samples : int
        States per estimate (the number of chains).
    model_cc : callable
        ``states -> connected correlations``, as used by the callback.
    target_cc : numpy.ndarray
        Connected correlations of the targets.
    repeats : int
        Independent draws.
    seed : int
        NumPy seed.

    Returns
    -------
    list of float
        One Pearson per draw.
    """
    rng = np.random.default_rng(seed)
    prob = weights / weights.sum()
    empty = np.zeros((num_samples, 0), np.float32)
    scores = []
    for _ in range(repeats):
        rows = rng.choice(len(seqs), num_samples, p=prob)
        scores.append(pearson(model_cc({"cat": seqs[rows], "cont": empty}), target_cc))
    return scores


# ---------------------------------------------------------------- preparation


@dataclass(frozen=True)
class Prepared:
    """The alignment, its weights, the graph and the targets of the fit.

    Attributes
    ----------
    seqs : int32[N, L]
    weights : float64[N]
    m_eff : float
        Sum of the weights.
    alpha : float
        Pseudocount mixed into the targets.
    graph : FactorGraph
    targets : Targets
    target_cc : numpy.ndarray
        Connected correlations of the targets.
    seconds : dict
        ``read_and_reweight``, ``build_graph`` and ``targets`` wall seconds.
    """

    seqs: np.ndarray
    weights: np.ndarray
    m_eff: float
    alpha: float
    graph: FactorGraph
    targets: Targets
    target_cc: np.ndarray
    seconds: dict[str, float]


def prepare(data_path: Path, pseudocount: float | None) -> Prepared:
    """Read and reweight the alignment, build the graph and the targets (timed).

    ``pseudocount=None`` uses adabmDCA's default, ``1 / M_eff``.
    """
    t0 = time.perf_counter()
    seqs = encode_alignment(read_fasta(data_path))
    if seqs.shape != EXPECTED_SHAPE:
        print(f"warning: alignment is {seqs.shape}, expected {EXPECTED_SHAPE}")
    num_seqs, length = seqs.shape
    num_states = len(ALPHABET)
    weights = sequence_weights(seqs, num_states)
    m_eff = float(weights.sum())
    t_data = time.perf_counter() - t0
    # Pseudocount: adabmDCA's default, 1 / M_eff, so that the targets match the
    # peer's; it only needs to keep unseen cells (theta -> -inf) away from zero.
    alpha = 1.0 / m_eff if pseudocount is None else float(pseudocount)
    print(
        f"RF00379: {num_seqs} sequences x {length} columns, M_eff = {m_eff:.1f} "
        f"(identity >= {IDENTITY_THRESHOLD:g}), pseudocount = {alpha:.3g} "
        f"[{t_data:.1f} s]"
    )

    t0 = time.perf_counter()
    graph = build_potts_graph(length, num_states)
    t_graph = time.perf_counter() - t0
    t0 = time.perf_counter()
    targets: Targets = build_targets_from_samples(
        graph,
        {"cat": seqs, "cont": np.zeros((num_seqs, 0), np.float32)},
        pseudocount=alpha,
        sample_weights=weights,
    )
    target_cc = connected_correlations(graph, targets.moments)
    t_targets = time.perf_counter() - t0
    print(
        f"graph: {graph!r} [{t_graph:.1f} s]; targets + their connected "
        f"correlations [{t_targets:.1f} s]"
    )
    seconds = {
        "read_and_reweight": t_data,
        "build_graph": t_graph,
        "targets": t_targets,
    }
    return Prepared(seqs, weights, m_eff, alpha, graph, targets, target_cc, seconds)


def checked_pair_cc_fn(
    graph: FactorGraph, seqs: np.ndarray, chains: int
) -> Callable[[dict[str, jax.Array]], np.ndarray]:
    """:func:`pair_cc_fn` for ``graph``, checked against the library on the data.

    Raises
    ------
    SystemExit
        If it disagrees with ``connected_correlations(graph, estimate_moments(...))``
        on the first ``chains`` sequences.
    """
    model_cc = pair_cc_fn(*seqs.shape[1:], len(ALPHABET))
    check = {"cat": seqs[:chains], "cont": np.zeros((chains, 0))}
    reference = connected_correlations(graph, estimate_moments(graph, check))
    if not np.allclose(model_cc(check), reference, atol=1e-6):
        raise SystemExit("the fast connected correlations disagree with the library")
    return model_cc
