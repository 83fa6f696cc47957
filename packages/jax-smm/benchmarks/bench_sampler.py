"""Throughput of Gibbs samplers on a periodic-grid Potts model.

What is measured
----------------
Variable updates per second of three samplers of one and the same distribution

    p(x) ∝ exp(sum_i u_i[x_i] + sum_(i,j) T_ij[x_i, x_j])

on a 64 x 64 periodic grid (a torus: 4,096 sites, 8,192 edges), each site taking
one of ``K`` states. Every entry of every unary vector ``u_i`` and of every pair
table ``T_ij`` is drawn i.i.d. from N(0, 0.5^2) with a fixed NumPy seed (one seed
per ``K``).

* ``ours``: jax_smm's chromatic Gibbs kernel, ``ChromaticGibbs.sample_bins``, on a
  ``FactorGraph`` with one unary factor per site and one pair factor per edge.
  Only the final states are kept (``accumulate=False``: no factor-cell counts).
* ``ours_counts``: the same kernel counting every factor cell after every sweep
  and returning the counts and move rates, as a training iteration does
  (``--skip-counts`` leaves it out).
* ``numpy``: a vectorised NumPy checkerboard sampler written here, the floor.
  The state of each colour is its own ``(sites, chains)`` array (chains on the
  last, contiguous axis) and every update draws one uniform: compared with the
  sigmoid of the logit difference for ``K = 2``, used for an inverse-CDF draw
  otherwise.
* ``thrml``: thrml 0.1.4 with the same two-colour block schedule and chains by
  ``jax.vmap``: ``IsingSamplingProgram`` for ``K = 2`` (parameters converted
  exactly from the 2 x 2 tables, see :func:`ising_parameters`),
  ``SquareCategoricalEBMFactor`` + ``CategoricalGibbsConditional`` otherwise.

Every implementation runs the same chains from the same random start. One
untimed warm-up call is followed by ``--repeats`` timed calls of ``--sweeps``
sweeps each, every call continuing from the previous one's states; the JAX calls
block until their result is ready. The rate is ``sites * chains * sweeps /
median seconds of one call``. Compilation (trace, lower and XLA compile, done
ahead of time) is excluded from the rate and reported on its own.

Checks, run before anything is written
--------------------------------------
* exact parameterisation: the log-potential of a few random states under ours,
  and minus thrml's energy, equals (up to a constant, for thrml) the log-potential
  computed from the raw NumPy arrays;
* sampling: after the timed calls, the single-site marginals over the chains of
  ours agree with those of the NumPy sampler (and of thrml) within a loose
  statistical tolerance, so a broken sampler cannot post a fast number; and
  ``ours_counts`` (same seed) ends in exactly the states of ``ours``.

Outputs
-------
A table on stdout, ``sampler_throughput.json`` (rates, raw times, checks,
machine information, load averages before and after) and
``sampler_throughput.png`` (grouped bars, log scale), both written atomically
into ``--out-dir`` (default: ``results/`` next to this script). A full run (not
``--quick``, not ``--no-readme``) then rewrites the ``bench:sampler`` block of
the package README from that JSON (:mod:`readme_blocks`).

Usage::

    python packages/jax-smm/benchmarks/bench_sampler.py            # full run
    python packages/jax-smm/benchmarks/bench_sampler.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np

# The script's own folder is on sys.path when it runs.
import readme_blocks

from jax_smm import Factor, FactorGraph, Variable
from jax_smm import energy as jax_smm_energy
from jax_smm.energy import extended_params
from jax_smm.mcmc.kernels import ChromaticGibbs
from jax_smm.persistence import atomic_write

SIDE = 64
PARAM_STD = 0.5
SEED = 1234
NUM_NEIGHBOURS = 4
IMPLEMENTATIONS = ("ours", "ours_counts", "numpy", "thrml")
NUMPY_WARMUP_SWEEPS = 5
ENERGY_CHECK_STATES = 4
ENERGY_ATOL = 1e-2
MIN_MARGINAL_CORRELATION = 0.7
RESULTS_STEM = "sampler_throughput"


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class PottsModel:
    """A Potts model with random unary and pair tables on a periodic square grid.

    ``log p(x) = sum_i unary[i, x_i] + sum_e pair[e, x_a, x_b] + const`` with
    ``(a, b) = edges[e]`` and site ``i = row * side + column``.

    Attributes
    ----------
    side : int
        Grid side (even, so that the checkerboard colouring is proper).
    num_states : int
        ``K``, the number of states of every site.
    unary : float32[n, K]
        One log-potential vector per site.
    edges : int64[E, 2]
        The grid edges: every site to its right and to its lower neighbour.
    pair : float32[E, K, K]
        One log-potential table per edge, ``[state of a, state of b]``.
    """

    side: int
    num_states: int
    unary: np.ndarray
    edges: np.ndarray
    pair: np.ndarray

    @property
    def num_sites(self) -> int:
        """Number of sites ``n``."""
        return self.side * self.side

    def colour_sites(self) -> tuple[np.ndarray, np.ndarray]:
        """Sites of the two checkerboard colours, ``(row + column) % 2``."""
        rows, cols = np.divmod(np.arange(self.num_sites), self.side)
        colour = (rows + cols) % 2
        return np.flatnonzero(colour == 0), np.flatnonzero(colour == 1)

    def log_potential(self, states: np.ndarray) -> np.ndarray:
        """Exact log-potential (no normalisation) of ``int[B, n]`` states, float64."""
        states = np.asarray(states, np.intp)
        sites = np.arange(self.num_sites)
        unary = self.unary.astype(np.float64)[sites, states].sum(axis=-1)
        first, second = states[:, self.edges[:, 0]], states[:, self.edges[:, 1]]
        edge_ids = np.arange(len(self.edges))
        pair = self.pair.astype(np.float64)[edge_ids, first, second].sum(axis=-1)
        return unary + pair


def make_potts(side: int, num_states: int, seed: int) -> PottsModel:
    """Draw a periodic-grid Potts model with N(0, 0.5^2) unary and pair entries.

    Parameters
    ----------
    side : int
        Grid side; must be even.
    num_states : int
        Number of states ``K``.
    seed : int
        Base seed; the generator is seeded with ``(seed, num_states)``.

    Returns
    -------
    PottsModel
    """
    if side % 2 or side < 4:
        raise ValueError(f"side must be even and >= 4, got {side}")
    n = side * side
    rows, cols = np.divmod(np.arange(n), side)
    right = rows * side + (cols + 1) % side
    down = ((rows + 1) % side) * side + cols
    sites = np.arange(n)
    edges = np.concatenate(
        [np.stack([sites, right], axis=1), np.stack([sites, down], axis=1)]
    ).astype(np.int64)
    rng = np.random.default_rng((seed, num_states))
    unary = rng.normal(0.0, PARAM_STD, (n, num_states)).astype(np.float32)
    pair = rng.normal(0.0, PARAM_STD, (len(edges), num_states, num_states))
    return PottsModel(side, num_states, unary, edges, pair.astype(np.float32))


def oriented_incidences(model: PottsModel) -> tuple[np.ndarray, np.ndarray]:
    """Neighbours of every site and the pair tables oriented ``[own, other]``.

    Returns
    -------
    other : intp[n, 4]
        The neighbouring site of each incidence.
    tables : float32[n, 4, K, K]
        ``tables[i, d, own state, other state]``.
    """
    n, k = model.num_sites, model.num_states
    other = np.full((n, NUM_NEIGHBOURS), -1, np.intp)
    tables = np.zeros((n, NUM_NEIGHBOURS, k, k), np.float32)
    slot = np.zeros(n, np.intp)
    for e, (a, b) in enumerate(model.edges):
        other[a, slot[a]], tables[a, slot[a]] = b, model.pair[e]
        other[b, slot[b]], tables[b, slot[b]] = a, model.pair[e].T
        slot[a] += 1
        slot[b] += 1
    if not np.all(slot == NUM_NEIGHBOURS):
        raise ValueError("every site of the torus must have exactly 4 neighbours")
    return other, tables


# ------------------------------------------------------------------ samplers


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


class CompiledSampler:
    """Shared timing protocol of the JAX samplers: one compiled call per step."""

    def _step(self) -> None:
        raise NotImplementedError

    def warm_up(self) -> None:
        """Run one full, untimed call."""
        self._step()

    def run(self, call: int) -> None:
        """Run one timed call (``call`` is unused; keys advance per call)."""
        del call
        self._step()


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
        Number of calls (warm-up included) to prepare keys for.
    seed : int
        Seed of the JAX random key.
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
        with_counts: bool,
    ) -> None:
        self.name = "ours_counts" if with_counts else "ours"
        start = time.perf_counter()
        self.graph = build_factor_graph(model)
        self.plan = self.graph.plan
        self.theta_ext = extended_params(self.graph.theta_groups)
        self.bins = jnp.asarray(init, jnp.int32)
        base_key = jax.random.key(seed)
        self.keys = [jax.random.fold_in(base_key, i) for i in range(n_calls)]
        jax.block_until_ready((self.theta_ext, self.bins, self.keys))
        self.setup_s = time.perf_counter() - start
        kernel = ChromaticGibbs()

        def call(plan, theta_ext, bins, key, n_sweeps):
            new_bins, counts, info = kernel.sample_bins(
                plan, theta_ext, bins, key, n_sweeps, accumulate=with_counts
            )
            extra = (counts, info.move_rate) if with_counts else ()
            return new_bins, extra

        start = time.perf_counter()
        lowered = jax.jit(call, static_argnames="n_sweeps").lower(
            self.plan, self.theta_ext, self.bins, self.keys[0], n_sweeps=n_sweeps
        )
        self._compiled = lowered.compile()
        self.compile_s: float | None = time.perf_counter() - start
        self._calls = 0

    @property
    def num_colours(self) -> int:
        """Colour classes found by the graph's colouring (2 on an even torus)."""
        return self.plan.num_colours

    def _step(self) -> None:
        out = self._compiled(
            self.plan, self.theta_ext, self.bins, self.keys[self._calls]
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


class NumpySampler:
    """Vectorised NumPy checkerboard Gibbs sampler (two colours).

    Each colour's states are a ``(sites of the colour, chains)`` array, chains on
    the last, contiguous axis; neighbours are gathered from the other colour's
    array. Every update draws exactly one uniform.

    Parameters
    ----------
    model : PottsModel
    init : int[chains, n]
        Initial states.
    n_sweeps : int
        Sweeps per call.
    seed : int
        Seed of the NumPy generator used for the updates.
    """

    name = "numpy"
    compile_s = None

    def __init__(
        self, model: PottsModel, init: np.ndarray, n_sweeps: int, seed: int
    ) -> None:
        start = time.perf_counter()
        self.k = model.num_states
        self.n_sweeps = n_sweeps
        self.num_sites = model.num_sites
        self.rng = np.random.default_rng(seed)
        self.sites = model.colour_sites()
        chains = init.shape[0]
        position = np.empty(model.num_sites, np.intp)
        for sites in self.sites:
            position[sites] = np.arange(len(sites))
        other, tables = oriented_incidences(model)
        # nb[c][j, d]: position, within the other colour, of neighbour d of site j.
        self.nb = [position[other[sites]] for sites in self.sites]
        size = len(self.sites[0])
        self._uniform = np.empty((size, chains), np.float32)
        if self.k == 2:
            # logit(x_i = 1) - logit(x_i = 0) = base_i + sum_d coef_id * x_other,
            # since T[1, y] - T[0, y] = a + b * y for y in {0, 1}.
            a = tables[:, :, 1, 0] - tables[:, :, 0, 0]
            b = tables[:, :, 1, 1] - tables[:, :, 0, 1] - a
            base = model.unary[:, 1] - model.unary[:, 0] + a.sum(axis=1)
            self.base = [base[sites][:, None] for sites in self.sites]
            self.coef = [b[sites][:, :, None] for sites in self.sites]
            self.state = [init[:, sites].T.astype(np.float32) for sites in self.sites]
            self._field = np.empty((size, chains), np.float32)
            self._gathered = np.empty((size, chains), np.float32)
        else:
            # rows[c][(j * 4 + d) * K + y] = tables[site j, d, :, y]: the K-vector
            # over own states selected by the neighbour's state y.
            self.rows = [
                np.ascontiguousarray(
                    tables[sites].transpose(0, 1, 3, 2).reshape(-1, self.k)
                )
                for sites in self.sites
            ]
            self.row_offset = (
                np.arange(size * NUM_NEIGHBOURS, dtype=np.intp).reshape(size, -1)
                * self.k
            )
            self.unary = [model.unary[sites][:, None, :] for sites in self.sites]
            self.state = [
                np.ascontiguousarray(init[:, sites].T, np.intp) for sites in self.sites
            ]
        self.setup_s = time.perf_counter() - start

    def _update_binary(self, colour: int) -> None:
        own, other = self.state[colour], self.state[1 - colour]
        field, gathered = self._field, self._gathered
        nb, coef = self.nb[colour], self.coef[colour]
        np.copyto(field, np.broadcast_to(self.base[colour], field.shape))
        for d in range(NUM_NEIGHBOURS):
            np.take(other, nb[:, d], axis=0, out=gathered)
            gathered *= coef[:, d]
            field += gathered
        # x = 1 with probability sigmoid(field) <=> u * (1 + exp(-field)) < 1.
        np.negative(field, out=field)
        with np.errstate(over="ignore"):
            np.exp(field, out=field)
        field += 1.0
        self.rng.random(dtype=np.float32, out=self._uniform)
        self._uniform *= field
        np.less(self._uniform, 1.0, out=own)

    def _update_categorical(self, colour: int) -> None:
        other = self.state[1 - colour]
        nb, rows, offset = self.nb[colour], self.rows[colour], self.row_offset
        logits = None
        for d in range(NUM_NEIGHBOURS):
            index = other.take(nb[:, d], axis=0)
            index += offset[:, d, None]
            gathered = rows.take(index, axis=0)  # (sites, chains, K)
            if logits is None:
                logits = gathered
            else:
                logits += gathered
        logits += self.unary[colour]
        # (sites, K, chains): the reductions over K become chain-wide vector ops.
        weights = np.ascontiguousarray(logits.transpose(0, 2, 1))
        weights -= weights.max(axis=1, keepdims=True)
        np.exp(weights, out=weights)
        for k in range(1, self.k):  # in-place cumulative sum over the states
            np.add(weights[:, k], weights[:, k - 1], out=weights[:, k])
        threshold = self.rng.random(dtype=np.float32, out=self._uniform)
        threshold *= weights[:, -1]
        new = self.state[colour]
        new.fill(0)
        for k in range(self.k - 1):  # new state = #{k : cdf_k < u * total}
            new += weights[:, k] < threshold

    def sweep(self, n_sweeps: int) -> None:
        """Run ``n_sweeps`` sweeps (colour 0 then colour 1)."""
        update = self._update_binary if self.k == 2 else self._update_categorical
        for _ in range(n_sweeps):
            update(0)
            update(1)

    def warm_up(self) -> None:
        """Run a few untimed sweeps (there is nothing to compile)."""
        self.sweep(min(self.n_sweeps, NUMPY_WARMUP_SWEEPS))

    def run(self, call: int) -> None:
        """Run one timed call of ``n_sweeps`` sweeps."""
        del call
        self.sweep(self.n_sweeps)

    def states(self) -> np.ndarray:
        """Current states, ``int64[chains, n]``."""
        out = np.empty((self.state[0].shape[1], self.num_sites), np.int64)
        for sites, state in zip(self.sites, self.state, strict=True):
            out[:, sites] = state.T
        return out


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
    """thrml 0.1.4, two-colour block Gibbs, chains by ``vmap``, compiled AOT.

    ``K = 2`` uses ``IsingEBM`` / ``IsingSamplingProgram`` with the exact
    conversion of :func:`ising_parameters`; other ``K`` use one
    ``SquareCategoricalEBMFactor`` for the unary vectors, one for the pair tables
    and ``CategoricalGibbsConditional`` on both colour blocks. thrml's weights
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
        Number of calls (warm-up included) to prepare keys for.
    seed : int
        Seed of the JAX random key.
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
        self.sites = model.colour_sites()
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
        base_key = jax.random.key(seed)
        self.keys = [jax.random.fold_in(base_key, i) for i in range(n_calls)]
        self.arrays, static = eqx.partition(program, eqx.is_array)
        jax.block_until_ready((self.state, self.keys, self.arrays))
        self.setup_s = time.perf_counter() - start

        schedule = thrml.SamplingSchedule(
            n_warmup=n_sweeps, n_samples=1, steps_per_sample=1
        )
        blocks = self.blocks

        def call(arrays, key, states):
            prog = eqx.combine(arrays, static)

            def one_chain(chain_key, chain_states):
                out = thrml.sample_states(
                    chain_key, prog, schedule, list(chain_states), [], blocks
                )
                return [o[0] for o in out]  # drop the n_samples = 1 axis

            return jax.vmap(one_chain)(jax.random.split(key, chains), states)

        start = time.perf_counter()
        lowered = jax.jit(call).lower(self.arrays, self.keys[0], self.state)
        self._compiled = lowered.compile()
        self.compile_s: float | None = time.perf_counter() - start
        self._calls = 0

    def _to_thrml(self, states: np.ndarray) -> jax.Array:
        if self.k == 2:
            return jnp.asarray(states == 1)
        return jnp.asarray(states, jnp.uint8)

    def _step(self) -> None:
        out = self._compiled(self.arrays, self.keys[self._calls], self.state)
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


# ------------------------------------------------------------------- checks


def check_parameterisation(
    model: PottsModel,
    ours: OursSampler | None,
    peer: ThrmlSampler | None,
    seed: int,
) -> dict[str, float]:
    """Compare log-potentials of random states with the NumPy reference.

    jax_smm must reproduce ``model.log_potential`` exactly; thrml's ``-energy``
    must do so up to one additive constant (taken from the first state).

    Returns
    -------
    dict
        Largest absolute error of each implementation checked.

    Raises
    ------
    SystemExit
        If an error exceeds the tolerance.
    """
    rng = np.random.default_rng((seed, model.num_states, 1))
    shape = (ENERGY_CHECK_STATES, model.num_sites)
    states = rng.integers(0, model.num_states, size=shape)
    reference = model.log_potential(states)
    errors: dict[str, float] = {}
    if ours is not None:
        errors["ours"] = float(np.max(np.abs(ours.log_potential(states) - reference)))
    if peer is not None:
        shifted = -peer.energy(states)
        shifted -= shifted[0] - reference[0]
        errors["thrml"] = float(np.max(np.abs(shifted - reference)))
    bad = {name: err for name, err in errors.items() if not err <= ENERGY_ATOL}
    if bad:
        raise SystemExit(
            f"K={model.num_states}: log-potential mismatch against the reference "
            f"(max abs error {bad}, tolerance {ENERGY_ATOL}); not writing results"
        )
    return errors


def site_marginals(states: np.ndarray, num_states: int) -> np.ndarray:
    """Fraction of chains in each state, ``float64[n, K]`` (``[n, 1]`` if K = 2)."""
    counts = np.stack([(states == k).mean(axis=0) for k in range(num_states)], 1)
    return counts[:, 1:] if num_states == 2 else counts


def compare_marginals(
    first: np.ndarray, second: np.ndarray, num_states: int
) -> dict[str, Any]:
    """Statistical agreement of the single-site marginals of two chain batches.

    Passes when the RMS difference of the per-site state frequencies is within
    1.5 times (plus 0.01) what independent sampling noise alone gives, and the
    frequencies correlate across sites by at least
    ``MIN_MARGINAL_CORRELATION`` (a sampler that does not move, or samples the
    wrong model, fails both).

    Parameters
    ----------
    first, second : int[chains, n]
        Final states of two samplers of the same model.
    num_states : int

    Returns
    -------
    dict
        ``rms``, ``expected_rms``, ``correlation`` and ``ok``.
    """
    p, q = site_marginals(first, num_states), site_marginals(second, num_states)
    n_p, n_q = first.shape[0], second.shape[0]
    pooled = (p * n_p + q * n_q) / (n_p + n_q)
    expected = float(np.sqrt(np.mean(pooled * (1 - pooled) * (1 / n_p + 1 / n_q))))
    rms = float(np.sqrt(np.mean((p - q) ** 2)))
    correlation = float(np.corrcoef(p.ravel(), q.ravel())[0, 1])
    ok = rms <= 1.5 * expected + 0.01 and correlation >= MIN_MARGINAL_CORRELATION
    return {
        "rms": rms,
        "expected_rms": expected,
        "correlation": correlation,
        "ok": bool(ok),
    }


# ---------------------------------------------------------------- measuring


def time_sampler(sampler: Sampler, repeats: int) -> list[float]:
    """Warm up, then time ``repeats`` calls; seconds per call."""
    sampler.warm_up()
    times = []
    for call in range(repeats):
        start = time.perf_counter()
        sampler.run(call)
        times.append(time.perf_counter() - start)
    return times


def benchmark_k(
    k: int, args: argparse.Namespace, implementations: Sequence[str]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run every implementation on the K-state model; records and checks."""
    model = make_potts(args.side, k, args.seed)
    init = np.random.default_rng((args.seed, k, 2)).integers(
        0, k, size=(args.chains, model.num_sites)
    )
    n_calls = args.repeats + 1
    updates = model.num_sites * args.chains * args.sweeps
    records: list[dict[str, Any]] = []
    finals: dict[str, np.ndarray] = {}
    checks: dict[str, Any] = {}
    for name in implementations:
        print(f"K={k} {name}: setting up ...", flush=True)
        if name in ("ours", "ours_counts"):
            sampler: Sampler = OursSampler(
                model, init, args.sweeps, n_calls, args.seed, name == "ours_counts"
            )
            checks["ours_num_colours"] = sampler.num_colours
        elif name == "numpy":
            sampler = NumpySampler(model, init, args.sweeps, args.seed)
        else:
            sampler = ThrmlSampler(model, init, args.sweeps, n_calls, args.seed)
        if name in ("ours", "thrml"):
            errors = check_parameterisation(
                model,
                sampler if name == "ours" else None,
                sampler if name == "thrml" else None,
                args.seed,
            )
            checks[f"{name}_log_potential_max_abs_error"] = errors[name]
        times = time_sampler(sampler, args.repeats)
        median = statistics.median(times)
        finals[name] = sampler.states()
        record = {
            "implementation": name,
            "k": k,
            "rate_m_updates_per_s": updates / median / 1e6,
            "median_s": median,
            "times_s": times,
            "compile_s": sampler.compile_s,
            "setup_s": sampler.setup_s,
            "updates_per_call": updates,
        }
        records.append(record)
        compile_text = "-" if sampler.compile_s is None else f"{sampler.compile_s:.2f}"
        print(
            f"K={k} {name}: {record['rate_m_updates_per_s']:.1f} M updates/s "
            f"(median {median:.3f} s of {len(times)}, compile {compile_text} s)",
            flush=True,
        )
        del sampler
    for peer in ("numpy", "thrml"):
        if "ours" in finals and peer in finals:
            result = compare_marginals(finals["ours"], finals[peer], k)
            checks[f"marginals_ours_vs_{peer}"] = result
            print(
                f"K={k} check ours vs {peer}: rms {result['rms']:.4f} "
                f"(noise {result['expected_rms']:.4f}), "
                f"r {result['correlation']:.3f} -> {'ok' if result['ok'] else 'FAIL'}"
            )
    if "ours" in finals and "ours_counts" in finals:
        # Same seed, same draws: counting must not change the states.
        same = bool(np.array_equal(finals["ours"], finals["ours_counts"]))
        checks["ours_counts_states_equal_ours"] = {"ok": same}
        print(f"K={k} check ours_counts ends in the states of ours -> {same}")
    return records, checks


# ------------------------------------------------------------------ output


def version_of(distribution: str) -> str | None:
    """Installed version of a distribution, ``None`` if absent."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def cpu_model() -> str | None:
    """CPU model name from ``/proc/cpuinfo`` where there is one."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def source_state() -> dict[str, Any]:
    """Git commit of this checkout and whether jax_smm's sources differ from it."""
    package = Path(__file__).resolve().parents[1]

    def git(*cmd: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(package), *cmd],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip()

    status = git("status", "--porcelain", "--", "src")
    return {
        "commit": git("rev-parse", "HEAD"),
        "jax_smm_src_modified": None if status is None else bool(status),
    }


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (``None`` where unavailable)."""
    try:
        return list(os.getloadavg())
    except OSError:
        return None


def machine_info() -> dict[str, Any]:
    """Versions, JAX backend and devices, and CPU of this machine."""
    device = jax.devices()[0]
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return {
        "jax": jax.__version__,
        "jaxlib": version_of("jaxlib"),
        "numpy": np.__version__,
        "thrml": version_of("thrml"),
        "jax_smm": version_of("jax-smm"),
        "python": platform.python_version(),
        "backend": jax.default_backend(),
        "device_kind": device.device_kind,
        "device_count": jax.device_count(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": None if affinity is None else len(affinity),
        "cpu_model": cpu_model(),
        "platform": platform.platform(),
    }


def ratios(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """``ours / numpy`` and ``ours / thrml`` rate ratios per K."""
    rate = {(r["implementation"], r["k"]): r["rate_m_updates_per_s"] for r in records}
    out: dict[str, dict[str, float]] = {}
    for k in sorted({r["k"] for r in records}):
        if ("ours", k) not in rate:
            continue
        out[str(k)] = {
            f"ours_over_{peer}": rate["ours", k] / rate[peer, k]
            for peer in ("numpy", "thrml")
            if (peer, k) in rate
        }
    return out


def format_table(records: Sequence[dict[str, Any]]) -> str:
    """Plain-text results table."""
    ratio = ratios(records)
    header = (
        f"{'implementation':<15}{'K':>3}{'M updates/s':>14}{'compile s':>11}"
        f"{'ours/numpy':>12}{'ours/thrml':>12}"
    )
    lines = [header, "-" * len(header)]
    for r in sorted(
        records, key=lambda r: (r["k"], IMPLEMENTATIONS.index(r["implementation"]))
    ):
        compile_s = "-" if r["compile_s"] is None else f"{r['compile_s']:.2f}"
        cells = ["-", "-"]
        if r["implementation"] == "ours":
            for i, peer in enumerate(("numpy", "thrml")):
                value = ratio.get(str(r["k"]), {}).get(f"ours_over_{peer}")
                cells[i] = "-" if value is None else f"{value:.2f}x"
        lines.append(
            f"{r['implementation']:<15}{r['k']:>3}"
            f"{r['rate_m_updates_per_s']:>14.1f}{compile_s:>11}"
            f"{cells[0]:>12}{cells[1]:>12}"
        )
    return "\n".join(lines)


def plot(records: Sequence[dict[str, Any]], title: str, path: Path) -> None:
    """Grouped bar chart of the rates (one group per K), log y axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = sorted({r["k"] for r in records})
    present = [
        i for i in IMPLEMENTATIONS if any(r["implementation"] == i for r in records)
    ]
    rate = {(r["implementation"], r["k"]): r["rate_m_updates_per_s"] for r in records}
    width = 0.8 / len(present)
    centres = np.arange(len(ks))
    fig, ax = plt.subplots(figsize=(7.0, 4.5), layout="constrained")
    for j, name in enumerate(present):
        values = [rate.get((name, k), np.nan) for k in ks]
        bars = ax.bar(
            centres + (j - (len(present) - 1) / 2) * width, values, width, label=name
        )
        ax.bar_label(bars, labels=[f"{v:.3g}" for v in values], fontsize=8)
    ax.set_yscale("log")
    ax.set_xticks(centres, [f"K = {k}" for k in ks])
    ax.set_ylabel("million variable updates / s")
    ax.set_title(title, fontsize=10)
    ax.legend()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120))
    plt.close(fig)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n", 1)[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 20 sweeps, 1 repeat"
    )
    parser.add_argument("--ks", type=int, nargs="+", default=[2, 8])
    parser.add_argument("--chains", type=int, default=256)
    parser.add_argument(
        "--sweeps", type=int, default=None, help="sweeps per call (200; 20 if quick)"
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed calls (3; 1 if quick)"
    )
    parser.add_argument("--skip-thrml", action="store_true")
    parser.add_argument(
        "--skip-counts",
        action="store_true",
        help="leave out ours_counts (the kernel counting factor cells every sweep)",
    )
    parser.add_argument(
        "--no-readme",
        action="store_true",
        help="do not rewrite the README block (quick runs never do)",
    )
    parser.add_argument("--device-label", default=None, help="stored in the JSON")
    parser.add_argument("--side", type=int, default=SIDE, help="grid side (even)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=Path(__file__).resolve().parent / "results",
        help="folder for the JSON and PNG",
    )
    args = parser.parse_args(argv)
    if args.sweeps is None:
        args.sweeps = 20 if args.quick else 200
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if min(args.ks) < 2 or args.chains < 1 or args.sweeps < 1 or args.repeats < 1:
        parser.error("need K >= 2 and positive --chains, --sweeps, --repeats")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the table, write JSON and PNG."""
    args = parse_args(argv)
    skipped = {"thrml"} if args.skip_thrml else set()
    if args.skip_counts:
        skipped.add("ours_counts")
    implementations = [name for name in IMPLEMENTATIONS if name not in skipped]
    load_before = load_average()
    machine = machine_info()
    source = source_state()  # now, close to when jax_smm was imported
    print(
        f"jax {machine['jax']} on {machine['backend']} ({machine['device_kind']}), "
        f"{machine['cpu_count']} CPUs; grid {args.side}x{args.side}, "
        f"{args.chains} chains, {args.sweeps} sweeps x {args.repeats} repeats",
        flush=True,
    )
    records: list[dict[str, Any]] = []
    checks: dict[str, Any] = {}
    for k in args.ks:
        k_records, k_checks = benchmark_k(k, args, implementations)
        records += k_records
        checks[str(k)] = k_checks
    print()
    print(format_table(records))
    failed = [
        f"K={k} {name}"
        for k, k_checks in checks.items()
        for name, value in k_checks.items()
        if isinstance(value, dict) and not value["ok"]
    ]
    if failed:
        print(f"sanity check failed ({', '.join(failed)}); not writing results")
        return 1

    args.out_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": "gibbs sampler throughput, periodic-grid Potts model",
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "device_label": args.device_label,
        "machine": machine,
        "source": source,
        "config": {
            "side": args.side,
            "num_sites": args.side * args.side,
            "num_edges": 2 * args.side * args.side,
            "param_std": PARAM_STD,
            "seed": args.seed,
            "ks": args.ks,
            "chains": args.chains,
            "sweeps_per_call": args.sweeps,
            "repeats": args.repeats,
            "quick": args.quick,
            "implementations": implementations,
            "rate": "sites * chains * sweeps / median seconds of one call",
        },
        "load": {
            "load_average_1_5_15": load_before,
            "load_average_after": load_average(),
        },
        "results": records,
        "ratios": ratios(records),
        "checks": checks,
    }
    json_path = args.out_dir / f"{RESULTS_STEM}.json"
    atomic_write(
        json_path,
        lambda tmp: tmp.write_text(json.dumps(payload, indent=2) + "\n", "utf-8"),
    )
    label = f" [{args.device_label}]" if args.device_label else ""
    title = (
        f"Gibbs throughput, {args.side}x{args.side} torus Potts, {args.chains} "
        f"chains, {args.sweeps} sweeps\n{machine['backend']}: "
        f"{machine['device_kind']}, {machine['cpu_count']} CPUs{label}"
    )
    plot(records, title, args.out_dir / f"{RESULTS_STEM}.png")
    print(f"\nwrote {json_path} and {RESULTS_STEM}.png")
    if not (args.quick or args.no_readme):
        block = readme_blocks.render_sampler(payload)
        if readme_blocks.update_readme("sampler", block):
            print(f"rewrote the bench:sampler block of {readme_blocks.README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
