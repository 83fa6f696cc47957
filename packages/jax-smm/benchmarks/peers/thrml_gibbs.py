"""The thrml 0.1.4 peer: two-color block Gibbs on the same Potts model."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
from potts_grid import PottsModel

from peers.base import CompiledSampler


def ising_parameters(model: PottsModel) -> tuple[np.ndarray, np.ndarray]:
    """Exact Ising form of a K = 2 model for thrml's spins ``s = 2 x - 1``.

    With ``x = 1 <-> s = +1`` (thrml's ``True``), a unary vector is
    ``u[x] = mean(u) + (u[1] - u[0]) / 2 * s`` and a 2 x 2 table is
    ``T[x_a, x_b] = c + h_a s_a + h_b s_b + J s_a s_b`` with
    ``J = (T00 + T11 - T01 - T10) / 4``, ``h_a = (T10 + T11 - T00 - T01) / 4`` and
    ``h_b = (T01 + T11 - T00 - T10) / 4``. thrml's Ising energy is
    ``-beta (sum_i b_i s_i + sum_e J_e s_a s_b)``, so with ``beta = 1`` the
    biases collect the unary and the ``h`` terms, and ``exp(-energy)`` equals
    ``p`` up to the constant.

    Returns
    -------
    biases : float32[n]
    weights : float32[E]
    """
    if model.num_states != 2:
        raise ValueError("the Ising form exists for K = 2 only")
    u = model.unary.astype(np.float64)
    t = model.pair.astype(np.float64)
    biases = 0.5 * (u[:, 1] - u[:, 0])
    weights = 0.25 * (t[:, 0, 0] + t[:, 1, 1] - t[:, 0, 1] - t[:, 1, 0])
    h_first = 0.25 * (t[:, 1, 0] + t[:, 1, 1] - t[:, 0, 0] - t[:, 0, 1])
    h_second = 0.25 * (t[:, 0, 1] + t[:, 1, 1] - t[:, 0, 0] - t[:, 1, 0])
    np.add.at(biases, model.edges[:, 0], h_first)
    np.add.at(biases, model.edges[:, 1], h_second)
    return biases.astype(np.float32), weights.astype(np.float32)


class ThrmlSampler(CompiledSampler):
    """thrml 0.1.4, two-color block Gibbs, chains by ``vmap``, compiled AOT.

    ``K = 2`` uses ``IsingEBM`` / ``IsingSamplingProgram`` with the exact
    conversion of :func:`ising_parameters`; other ``K`` use one
    ``SquareCategoricalEBMFactor`` for the unary vectors, one for the pair tables
    and ``CategoricalGibbsConditional`` on both color blocks. thrml's weights
    enter ``p ∝ exp(-energy) = exp(+sum weights)``, the sign convention of
    jax_smm, so the tables are passed unchanged.

    Parameters
    ----------
    model : PottsModel
    init : int[chains, n]
        Initial states.
    n_sweeps : int
        Sweeps per call (thrml's ``n_warmup`` with a single observed sample).
    n_calls : int
        Number of calls (warm-up included) to prepare PRNG keys for.
    seed : int
        Seed of the JAX PRNG keys.
    """

    name = "thrml"

    def __init__(
        self,
        model: PottsModel,
        init: np.ndarray,
        n_sweeps: int,
        n_calls: int,
        seed: int,
    ) -> None:
        import equinox as eqx
        import thrml
        from thrml import models

        start = time.perf_counter()
        self.k = model.num_states
        self.sites = model.color_sites()
        self.num_sites = model.num_sites
        chains = init.shape[0]
        a, b = model.edges[:, 0], model.edges[:, 1]
        if self.k == 2:
            nodes = [thrml.SpinNode() for _ in range(model.num_sites)]
            biases, weights = ising_parameters(model)
            ebm = models.IsingEBM(
                nodes,
                [(nodes[i], nodes[j]) for i, j in zip(a, b, strict=True)],
                jnp.asarray(biases),
                jnp.asarray(weights),
                jnp.asarray(1.0, jnp.float32),
            )
            self.blocks = [thrml.Block([nodes[i] for i in s]) for s in self.sites]
            program = models.IsingSamplingProgram(ebm, self.blocks, [])
            self.dtype = jnp.bool_
        else:
            nodes = [thrml.CategoricalNode() for _ in range(model.num_sites)]
            factors = [
                models.SquareCategoricalEBMFactor(
                    [thrml.Block(nodes)], jnp.asarray(model.unary)
                ),
                models.SquareCategoricalEBMFactor(
                    [
                        thrml.Block([nodes[i] for i in a]),
                        thrml.Block([nodes[j] for j in b]),
                    ],
                    jnp.asarray(model.pair),
                ),
            ]
            ebm = models.FactorizedEBM(factors)
            self.blocks = [thrml.Block([nodes[i] for i in s]) for s in self.sites]
            spec = thrml.BlockGibbsSpec(self.blocks, [])
            conditional = models.CategoricalGibbsConditional(self.k)
            program = thrml.FactorSamplingProgram(
                spec, [conditional] * len(self.blocks), factors, []
            )
            self.dtype = jnp.uint8
        self.ebm = ebm
        self.state = [self._to_thrml(init[:, s]) for s in self.sites]
        self.rng_keys = self.per_call_rng_keys(seed, n_calls)
        self.arrays, static = eqx.partition(program, eqx.is_array)
        jax.block_until_ready((self.state, self.rng_keys, self.arrays))
        self.setup_s = time.perf_counter() - start

        schedule = thrml.SamplingSchedule(
            n_warmup=n_sweeps, n_samples=1, steps_per_sample=1
        )
        blocks = self.blocks

        def call(arrays, rng_key, states):
            prog = eqx.combine(arrays, static)

            def one_chain(chain_rng_key, chain_states):
                out = thrml.sample_states(
                    chain_rng_key, prog, schedule, list(chain_states), [], blocks
                )
                return [o[0] for o in out]  # drop the n_samples = 1 axis

            return jax.vmap(one_chain)(jax.random.split(rng_key, chains), states)

        start = time.perf_counter()
        lowered = jax.jit(call).lower(self.arrays, self.rng_keys[0], self.state)
        self._compiled = lowered.compile()
        self.compile_s: float | None = time.perf_counter() - start
        self._calls = 0

    def _to_thrml(self, states: np.ndarray) -> jax.Array:
        if self.k == 2:
            return jnp.asarray(states == 1)
        return jnp.asarray(states, jnp.uint8)

    def _step(self) -> None:
        out = self._compiled(self.arrays, self.rng_keys[self._calls], self.state)
        jax.block_until_ready(out)
        self.state = list(out)
        self._calls += 1

    def states(self) -> np.ndarray:
        """Current states, ``int64[chains, n]`` (spins mapped ``True -> 1``)."""
        chains = self.state[0].shape[0]
        out = np.empty((chains, self.num_sites), np.int64)
        for sites, state in zip(self.sites, self.state, strict=True):
            out[:, sites] = np.asarray(state).astype(np.int64)
        return out

    def energy(self, states: np.ndarray) -> np.ndarray:
        """Energy under thrml (``p ∝ exp(-energy)``) of ``int[B, n]`` states."""
        blocks = [self._to_thrml(states[:, s]) for s in self.sites]
        energy = jax.vmap(lambda *block: self.ebm.energy(list(block), self.blocks))
        return np.asarray(energy(*blocks), np.float64)
