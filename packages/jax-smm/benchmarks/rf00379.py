"""The RF00379 alignment and its Potts model, for ``bench_fit_rf00379.py``.

Reading and encoding the FASTA file, DCA sequence reweighting, the fully
connected Potts graph, the fast connected correlations and the noise ceiling
of a one-state-per-chain estimate; :func:`prepare` runs the data steps in order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jax_smm import (
    Factor,
    FactorGraph,
    Targets,
    Variable,
    build_targets_from_samples,
    connected_correlations,
    estimate_moments,
)

ALPHABET = "-ACGU"
EXPECTED_SHAPE = (3827, 136)
IDENTITY_THRESHOLD = 0.8


# --------------------------------------------------------------------------- data


def read_fasta(path: Path) -> list[str]:
    """Read the sequences of a FASTA file (records may span several lines).

    Parameters
    ----------
    path : Path
        The FASTA file; header lines start with ``>``.

    Returns
    -------
    list of str
        The sequences in file order, upper-cased, whitespace removed.
    """
    sequences: list[str] = []
    parts: list[str] | None = None
    with path.open(encoding="ascii", errors="replace") as handle:
        for line in handle:
            line = line.strip()
            if line.startswith(">"):
                if parts is not None:
                    sequences.append("".join(parts))
                parts = []
            elif line:
                if parts is None:
                    raise ValueError(f"{path}: sequence data before the first header")
                parts.append(line.upper())
    if parts is not None:
        sequences.append("".join(parts))
    return sequences


def encode_alignment(sequences: Sequence[str], alphabet: str = ALPHABET) -> np.ndarray:
    """Map aligned sequences to integer states.

    Parameters
    ----------
    sequences : sequence of str
        Aligned sequences, all of one length.
    alphabet : str
        Letter of each state; letters outside it map to state 0 (the gap).

    Returns
    -------
    numpy.ndarray
        ``int32[N, L]`` states.
    """
    lengths = {len(s) for s in sequences}
    if len(lengths) != 1:
        raise ValueError(f"sequences have different lengths: {sorted(lengths)}")
    lookup = np.zeros(256, np.int32)
    for state, letter in enumerate(alphabet):
        lookup[ord(letter)] = state
    raw = np.frombuffer("".join(sequences).encode("ascii", "replace"), np.uint8)
    return lookup[raw].reshape(len(sequences), lengths.pop())


def sequence_weights(
    seqs: np.ndarray,
    num_states: int,
    identity: float = IDENTITY_THRESHOLD,
    block_rows: int = 1024,
) -> np.ndarray:
    """DCA reweighting: one over the size of each sequence's identity cluster.

    Two sequences are neighbors when they agree at a fraction ``>= identity``
    of the columns (gap against gap counts as agreement). Agreements are counted
    as products of one-hot matrices, a block of rows at a time.

    Parameters
    ----------
    seqs : int[N, L]
        Integer states.
    num_states : int
        Number of states per column.
    identity : float
        Fractional-identity threshold.
    block_rows : int
        Rows per matrix product (bounds memory at ``block_rows * N`` floats).

    Returns
    -------
    numpy.ndarray
        ``float64[N]`` weights; each sequence counts itself, so all are <= 1.
    """
    n, length = seqs.shape
    onehot = np.zeros((n, length * num_states), np.float32)
    onehot[np.arange(n)[:, None], np.arange(length) * num_states + seqs] = 1.0
    # Agreement counts are small integers, exact in float32; the tolerance only
    # guards the product identity * length against rounding.
    min_agree = identity * length - 1e-6
    neighbors = np.empty(n, np.int64)
    for start in range(0, n, block_rows):
        agree = onehot[start : start + block_rows] @ onehot.T
        neighbors[start : start + block_rows] = np.count_nonzero(
            agree >= min_agree, axis=1
        )
    return 1.0 / neighbors


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
