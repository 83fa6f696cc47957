"""Refuse work that cannot fit before allocating it: memory estimates and checks.

A network or a dataset whose size comes from a flag (``--hidden 25000``,
``--rows 20000``) would otherwise allocate until the operating system kills
the process. :func:`check_memory` compares an estimate with the memory
available now and raises :class:`MemoryError` naming the flags and the
estimate; :func:`model_memory_estimate` sizes a network with its optimizer
state.
"""

from __future__ import annotations

import os

from kkt_nets.config import TrainConfig
from kkt_nets.data.datasets import C_FEATS, V_FEATS

BYTES_PER_FLOAT = 4
MEMORY_FRACTION = 0.8
"""Largest share of the available memory an estimate may claim."""
# copies of every parameter during training: weights, gradients, Adam's two
# moments and the EMA target
TRAINING_COPIES = 5


def available_memory() -> int:
    """Bytes of memory available now (``MemAvailable``; total RAM if unknown)."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_memory(estimate: int, what: str, flags: str) -> None:
    """Raise unless ``estimate`` bytes fit in the memory available.

    Parameters
    ----------
    estimate : int
        Bytes the work would allocate.
    what : str
        What would be allocated (for the message).
    flags : str
        The flags that set the size (for the message).

    Raises
    ------
    MemoryError
        If ``estimate`` exceeds :data:`MEMORY_FRACTION` of the available memory.
    """
    available = available_memory()
    if estimate > MEMORY_FRACTION * available:
        raise MemoryError(
            f"{what} would need about {estimate / 1e9:.1f} GB, more than the "
            f"{available / 1e9:.1f} GB of memory available: reduce {flags}"
        )


def model_memory_estimate(config: TrainConfig, m: int, n: int) -> int:
    """Bytes of a network's parameters with their training copies.

    Parameters
    ----------
    config : TrainConfig
        Reads ``use_bipartite_graphs``, ``embedding_size``, ``gnn_layers``,
        ``hidden``, ``num_layers``.
    m, n : int
        Padded LP size (the MLP's input and output widths).

    Returns
    -------
    int
        ``TRAINING_COPIES x 4 bytes x`` the parameter count (up to biases).
    """
    if config.use_bipartite_graphs:
        d = config.embedding_size
        # per round two convolutions of ~7 d^2 each; embeddings, heads and
        # the four JEPA MLPs ~12 d^2
        count = (C_FEATS + V_FEATS) * d + (14 * config.gnn_layers + 12) * d * d
    else:
        h, inputs = config.hidden, m * n + m + n
        count = inputs * h + (config.num_layers + 3) * h * h + h * (m + n)
    return TRAINING_COPIES * BYTES_PER_FLOAT * count
