"""jax_smm's own chromatic Gibbs kernel, wrapped as a benchmark sampler."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
from potts_grid import PottsModel

from jax_smm import Factor, FactorGraph, Variable
from jax_smm import energy as jax_smm_energy
from jax_smm.energy import extended_params
from jax_smm.mcmc.kernels import ChromaticGibbs
from peers.base import CompiledSampler


def build_factor_graph(model: PottsModel) -> FactorGraph:
    """The model as a jax_smm graph: a unary factor per site, a pair per edge."""
    k = model.num_states
    variables = [Variable.categorical(f"s{i}", k) for i in range(model.num_sites)]
    factors = [Factor(i, (i,), model.unary[i]) for i in range(model.num_sites)]
    factors += [
        Factor(model.num_sites + e, (int(a), int(b)), model.pair[e])
        for e, (a, b) in enumerate(model.edges)
    ]
    return FactorGraph(variables, factors)


class OursSampler(CompiledSampler):
    """jax_smm's ``ChromaticGibbs.sample_bins`` under ``jax.jit``, compiled AOT.

    Parameters
    ----------
    model : PottsModel
    init : int[chains, n]
        Initial states.
    n_sweeps : int
        Sweeps per call (static under ``jit``).
    n_calls : int
        Number of calls (warm-up included) to prepare PRNG keys for.
    seed : int
        Seed of the JAX PRNG keys.
    with_counts : bool
        Also accumulate and return the factor-cell counts and move rates (the
        sampler is then named ``ours_counts``).
    """

    def __init__(
        self,
        model: PottsModel,
        init: np.ndarray,
        n_sweeps: int,
        n_calls: int,
        seed: int,
        with_counts: bool = False,
    ) -> None:
        self.name = "ours_counts" if with_counts else "ours"
        start = time.perf_counter()
        self.graph = build_factor_graph(model)
        self.plan = self.graph.plan
        self.theta_ext = extended_params(self.graph.theta_groups)
        self.bins = jnp.asarray(init, jnp.int32)
        self.rng_keys = self.per_call_rng_keys(seed, n_calls)
        jax.block_until_ready((self.theta_ext, self.bins, self.rng_keys))
        self.setup_s = time.perf_counter() - start
        kernel = ChromaticGibbs()

        def call(plan, theta_ext, bins, rng_key, n_sweeps):
            new_bins, counts, info = kernel.sample_bins(
                plan, theta_ext, bins, rng_key, n_sweeps, accumulate=with_counts
            )
            extra = (counts, info.move_rate) if with_counts else ()
            return new_bins, extra

        start = time.perf_counter()
        lowered = jax.jit(call, static_argnames="n_sweeps").lower(
            self.plan, self.theta_ext, self.bins, self.rng_keys[0], n_sweeps=n_sweeps
        )
        self._compiled = lowered.compile()
        self.compile_s: float | None = time.perf_counter() - start
        self._calls = 0

    @property
    def num_colors(self) -> int:
        """Color classes found by the graph's coloring (2 on an even torus)."""
        return self.plan.num_colors

    def _step(self) -> None:
        out = self._compiled(
            self.plan, self.theta_ext, self.bins, self.rng_keys[self._calls]
        )
        jax.block_until_ready(out)
        self.bins = out[0]
        self._calls += 1

    def states(self) -> np.ndarray:
        """Current states, ``int32[chains, n]``."""
        return np.asarray(self.bins)

    def log_potential(self, states: np.ndarray) -> np.ndarray:
        """jax_smm's log-potential of ``int[B, n]`` states."""
        state = {
            "cat": jnp.asarray(states, jnp.int32),
            "cont": jnp.zeros((len(states), 0), jnp.float32),
        }
        return np.asarray(jax_smm_energy(self.graph, state), np.float64)
