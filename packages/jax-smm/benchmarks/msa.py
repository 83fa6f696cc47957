"""A multiple sequence alignment: reading FASTA, encoding, DCA reweighting.

The data steps of ``rf00379.prepare``, written for any RNA alignment in the
five-symbol alphabet ``-ACGU``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

ALPHABET = "-ACGU"
IDENTITY_THRESHOLD = 0.8


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
