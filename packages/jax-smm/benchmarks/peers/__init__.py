"""The implementations the benchmarks run or cite, one module each.

Samplers of ``bench_sampler.py`` (all built as ``cls(model, init, n_sweeps,
n_calls, seed)``, see :mod:`peers.base`):

* :mod:`peers.jax_smm_gibbs`: jax_smm's own kernel (``ours``, ``ours_counts``);
* :mod:`peers.numpy_gibbs`: a vectorized NumPy sampler, the floor (``numpy``);
* :mod:`peers.thrml_gibbs`: thrml 0.1.4 (``thrml``).

Fitters of ``bench_fit_rf00379.py``: :mod:`peers.adabmdca`, reported numbers
of adabmDCA 1.0.0 (not run here).
"""

from __future__ import annotations

from functools import partial

import numpy as np
from potts_grid import PottsModel

from peers.base import Sampler
from peers.jax_smm_gibbs import OursSampler
from peers.numpy_gibbs import NumpySampler
from peers.thrml_gibbs import ThrmlSampler

IMPLEMENTATIONS = ("ours", "ours_counts", "numpy", "thrml")

SAMPLERS = {
    "ours": OursSampler,
    "ours_counts": partial(OursSampler, with_counts=True),
    "numpy": NumpySampler,
    "thrml": ThrmlSampler,
}


def make_sampler(
    name: str,
    model: PottsModel,
    init: np.ndarray,
    n_sweeps: int,
    n_calls: int,
    seed: int,
) -> Sampler:
    """Build the sampler called ``name`` (one of :data:`IMPLEMENTATIONS`)."""
    return SAMPLERS[name](model, init, n_sweeps, n_calls, seed)
