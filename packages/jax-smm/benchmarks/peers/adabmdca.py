"""The adabmDCA 1.0.0 fitting peer: reported numbers, not run by the benchmark.

Its times on RF00379 were measured by the project on the same machine class,
not in a run of this benchmark; the machine load at that time is unknown.
"""

from __future__ import annotations

from typing import Any

PEER_REFERENCE: dict[str, Any] = {
    "label": "adabmDCA 1.0.0",
    "provenance": (
        "timed by the project on the same machine class, not measured in this run"
    ),
    "settings": (
        "PyTorch on CPU, Metropolis, 1,000 chains, 10 sweeps per update, lr 0.01, "
        "its defaults including reweighting; its step also computes diagnostics"
    ),
    "data": "RF00379.fasta (the same alignment)",
    "thresholds": {
        "0.8": {"seconds": 111.0, "iterations": None},
        "0.9": {"seconds": 454.0, "iterations": 1158},
    },
}
