"""What every sampler of ``bench_sampler.py`` offers the timing loop.

Every sampler module of this package has one constructor signature,
``(model, init, n_sweeps, n_calls, seed)``, and satisfies :class:`Sampler`.
"""

from __future__ import annotations

from typing import Protocol

import jax
import numpy as np


class Sampler(Protocol):
    """What the timing loop needs from an implementation."""

    name: str
    setup_s: float
    compile_s: float | None

    def warm_up(self) -> None:
        """Run the untimed warm-up call."""

    def run(self, call: int) -> None:
        """Run one timed call of ``n_sweeps`` sweeps; return once it is done."""

    def states(self) -> np.ndarray:
        """Current states of every chain, ``int[chains, n]`` in site order."""


class CompiledSampler:
    """Shared timing protocol of the JAX samplers: one compiled call per step."""

    @staticmethod
    def per_call_rng_keys(seed: int, n_calls: int) -> list[jax.Array]:
        """One PRNG key per call (warm-up included), folded from ``seed``."""
        base_rng_key = jax.random.key(seed)
        return [jax.random.fold_in(base_rng_key, i) for i in range(n_calls)]

    def _step(self) -> None:
        raise NotImplementedError

    def warm_up(self) -> None:
        """Run one full, untimed call."""
        self._step()

    def run(self, call: int) -> None:
        """Run one timed call (``call`` is unused; PRNG keys advance per call)."""
        del call
        self._step()
