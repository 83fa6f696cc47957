"""MCMC kernels and the persistent chain buffer."""

from jax_smm.mcmc.buffer import PersistentBuffer, resolve_kernel
from jax_smm.mcmc.hybrid import HybridGibbs, HybridInfo
from jax_smm.mcmc.kernels import (
    ChromaticGibbs,
    KernelInfo,
    SequentialGibbs,
    gibbs_sweep,
    gibbs_update,
)

__all__ = [
    "ChromaticGibbs",
    "HybridGibbs",
    "HybridInfo",
    "KernelInfo",
    "PersistentBuffer",
    "SequentialGibbs",
    "gibbs_sweep",
    "gibbs_update",
    "resolve_kernel",
]
