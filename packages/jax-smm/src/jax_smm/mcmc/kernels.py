"""Gibbs kernels over the discrete states (categories or bins) of a factor graph.

Two kernels sample the same distribution ``p(x) ∝ exp(sum_f theta_f[x_f])``:

* the *sequential* kernel (:func:`gibbs_update`, :func:`gibbs_sweep`,
  :class:`SequentialGibbs`) visits the variables one at a time in id order and
  draws each from its full conditional; it is the reference;
* the *chromatic* kernel (:class:`ChromaticGibbs`, the default everywhere)
  updates every variable of one color class at once, in every chain at once.
  Variables of one color share no factor, so their conditionals are
  independent given the other colors and the block update is exact Gibbs.

Both work on the plan's color-blocked layout: a state is ``int32[R, chains]``
(rows = variables grouped by color, chains on the last, contiguous axis), and
each conditional is built from the plan's pre-oriented incidence tables. The
chromatic kernel's conditionals and draws live in
:mod:`~jax_smm.mcmc.conditionals` (one uniform per update, inverse CDF); the
sequential one gathers each row's logits plainly
(:func:`~jax_smm.mcmc.conditionals.row_logits`) and uses
``jax.random.categorical``, so the two share no sampling code. Factor-cell
counts are accumulated after every sweep by :mod:`~jax_smm.mcmc.counting`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jax_smm.compile import Plan
from jax_smm.energy import extended_params
from jax_smm.features import State, bins_to_state, state_to_bins
from jax_smm.graph import FactorGraph
from jax_smm.mcmc import counting, threefry
from jax_smm.mcmc.conditionals import (
    ChainState,
    SamplerTables,
    block_segments,
    chain_state,
    defer_writes,
    draw_block,
    row_logits,
    sampler_tables,
    update_block,
    write_block,
)


class KernelInfo(NamedTuple):
    """Diagnostics of a batch of sweeps.

    Attributes
    ----------
    move_rate : float32[n]
        Per variable, the fraction of its updates (over sweeps and chains) that
        changed its state or bin.
    """

    move_rate: jax.Array


def bins_to_rows(plan: Plan, bins: jax.Array) -> jax.Array:
    """``int32[chains, n]`` per-variable bins -> ``int32[R, chains]`` row layout."""
    padded = jnp.concatenate([bins.T, jnp.zeros((1, bins.shape[0]), bins.dtype)])
    return padded[plan.var_of_row]


def rows_to_bins(plan: Plan, rows: jax.Array) -> jax.Array:
    """``int32[R, chains]`` row layout -> ``int32[chains, n]`` per-variable bins."""
    return rows[plan.row_of_var].T


SweepFn = Callable[[ChainState, jax.Array], ChainState]


def _run_sweeps(
    plan: Plan,
    state: ChainState,
    rng_key: jax.Array,
    n_sweeps: int,
    sweep: SweepFn,
    accumulate: bool,
) -> tuple[ChainState, jax.Array, KernelInfo]:
    """Run ``n_sweeps`` sweeps, accumulating cell counts after every sweep."""
    chains = state.rows.shape[1]
    stats = counting.init_stats(plan) if accumulate else None
    moves = jnp.zeros(plan.num_rows, jnp.float32)

    def body(carry, sweep_rng_key):
        old, stats, moves = carry
        new = sweep(old, sweep_rng_key)
        # Every variable is updated exactly once per sweep, so comparing the
        # sweep's start and end tells whether its update moved it. (Counting
        # inside the color step made XLA recompute the draw for the count.)
        moves = moves + jnp.sum(new.rows != old.rows, axis=1, dtype=jnp.float32)
        if accumulate:
            stats = counting.add_counts(plan, stats, new)
        return (new, stats, moves), None

    (state, stats, moves), _ = lax.scan(
        body, (state, stats, moves), jax.random.split(rng_key, n_sweeps)
    )
    if accumulate:
        counts = counting.counts_from_stats(plan, stats, n_sweeps * chains)
    else:
        counts = jnp.zeros(plan.num_params, jnp.float32)
    info = KernelInfo(move_rate=moves[plan.row_of_var] / (n_sweeps * chains))
    return state, counts, info


@dataclass(frozen=True)
class ChromaticGibbs:
    """Block Gibbs by color classes: every variable of a color at once.

    The default kernel. One ``lax.scan`` step per color keeps each color's new
    states materialized before the next color reads them; the uniforms of a
    whole sweep are drawn before it, in one parallel loop. On the ``"select"``
    path each block is written one step late
    (:func:`~jax_smm.mcmc.conditionals.defer_writes`).
    """

    def sweep_fn(self, plan: Plan, tables: SamplerTables) -> SweepFn:
        """Return ``(state, rng_key) -> state`` for one sweep."""
        size = plan.color_size

        def color_step(state, xs):
            color, uniforms = xs
            return update_block(plan, tables, state, color * size, uniforms), None

        def late_color_step(carry, xs):
            # Write the block drawn at the previous step, then draw this one.
            state, pending, pending_start = carry
            state = write_block(plan, state, pending_start, pending)
            color, uniforms = xs
            start = color * size
            return (
                state,
                draw_block(plan, tables, state, start, uniforms),
                start,
            ), None

        def sweep(state, rng_key):
            chains = state.rows.shape[1]
            uniforms = threefry.uniform(rng_key, (plan.num_colors, size, chains))
            xs = (jnp.arange(plan.num_colors), uniforms)
            if not defer_writes(plan):
                state, _ = lax.scan(color_step, state, xs)
                return state
            # Block 0 rewritten with its own states at the first step: a no-op.
            pending = tuple(
                state.rows[seg.start : seg.stop] for seg in block_segments(plan)
            )
            (state, pending, start), _ = lax.scan(
                late_color_step, (state, pending, jnp.int32(0)), xs
            )
            return write_block(plan, state, start, pending)

        return sweep

    def initial_state(self, plan: Plan, rows: jax.Array) -> ChainState:
        """The sweep state of row-layout states (one-hot rows on dense plans)."""
        return chain_state(plan, rows)

    def sample_bins(
        self,
        plan: Plan,
        theta_ext: jax.Array,
        bins: jax.Array,
        rng_key: jax.Array,
        n_sweeps: int,
        accumulate: bool = True,
    ) -> tuple[jax.Array, jax.Array, KernelInfo]:
        """Run ``n_sweeps`` sweeps on ``int32[chains, n]`` bins.

        Parameters
        ----------
        plan : Plan
        theta_ext : float32[P + 1]
            Flat parameters with a trailing zero.
        bins : int32[chains, n]
            Starting states.
        rng_key : jax.Array
        n_sweeps : int
            Number of sweeps (static).
        accumulate : bool
            Count factor cells after every sweep (static); ``False`` for pure
            sampling, when the counts are not needed.

        Returns
        -------
        bins : int32[chains, n]
            The final states.
        counts : float32[P]
            Factor-cell counts summed over every sweep and chain (zeros when
            ``accumulate`` is ``False``).
        info : KernelInfo
        """
        tables = sampler_tables(plan, theta_ext)
        sweep = self.sweep_fn(plan, tables)
        state = self.initial_state(plan, bins_to_rows(plan, bins))
        state, counts, info = _run_sweeps(
            plan, state, rng_key, n_sweeps, sweep, accumulate
        )
        return rows_to_bins(plan, state.rows), counts, info


def _sequential_row_update(
    plan: Plan, tables: SamplerTables, rows: jax.Array, var_id: jax.Array, rng_key
) -> jax.Array:
    """Redraw variable ``var_id`` in every chain from its full conditional."""
    row = plan.row_of_var[var_id]
    logits = row_logits(plan, tables, rows, row)  # (K, C)
    new = jax.random.categorical(rng_key, logits, axis=0).astype(rows.dtype)
    return rows.at[row].set(new)


@dataclass(frozen=True)
class SequentialGibbs:
    """Sequential-scan Gibbs in variable-id order (the reference kernel)."""

    def sweep_fn(self, plan: Plan, tables: SamplerTables) -> SweepFn:
        """Return ``(state, rng_key) -> state`` for one sweep."""

        def step(carry, var_id):
            rows, rng_key = carry
            rows = _sequential_row_update(
                plan, tables, rows, var_id, jax.random.fold_in(rng_key, var_id)
            )
            return (rows, rng_key), None

        def sweep(state, rng_key):
            (rows, _), _ = lax.scan(
                step, (state.rows, rng_key), jnp.arange(plan.num_vars)
            )
            return ChainState(rows, None)

        return sweep

    def initial_state(self, plan: Plan, rows: jax.Array) -> ChainState:
        """The sweep state of row-layout states (rows only)."""
        del plan
        return ChainState(rows, None)

    sample_bins = ChromaticGibbs.sample_bins


def gibbs_update(
    graph: FactorGraph,
    state: State,
    var_id: int | jax.Array,
    rng_key: jax.Array,
    theta_groups: tuple[jax.Array, ...] | None = None,
) -> State:
    """Redraw one variable of one state from its full conditional.

    ``logits[k]`` is the sum of the adjacent factors' entries with ``x_i = k``;
    the new state is ``categorical(logits)``. A continuous variable first draws
    its bin this way, then a value uniformly inside that bin (exact for the
    binned model).

    Parameters
    ----------
    graph : FactorGraph
    state : dict
        One state ``{"cat": int32[n_cat], "cont": float32[n_cont]}``.
    var_id : int
        The variable to update (may be traced).
    rng_key : jax.Array
    theta_groups : tuple of arrays, optional
        Group tables to use instead of the graph's own.

    Returns
    -------
    dict
        The updated state.
    """
    return _sequential(graph, state, rng_key, theta_groups, jnp.asarray([var_id]))


def gibbs_sweep(
    graph: FactorGraph,
    state: State,
    rng_key: jax.Array,
    theta_groups: tuple[jax.Array, ...] | None = None,
) -> State:
    """One sequential sweep: :func:`gibbs_update` on every variable in id order."""
    return _sequential(graph, state, rng_key, theta_groups, jnp.arange(graph.num_vars))


def _sequential(
    graph: FactorGraph,
    state: State,
    rng_key: jax.Array,
    theta_groups: tuple[jax.Array, ...] | None,
    var_ids: jax.Array,
) -> State:
    """Sequential updates of ``var_ids`` on a single state pytree."""
    plan = graph.plan
    groups = graph.theta_groups if theta_groups is None else theta_groups
    tables = sampler_tables(plan, extended_params(groups))
    bin_rng_key, value_rng_key = jax.random.split(rng_key)
    rows = bins_to_rows(plan, state_to_bins(plan, state)[None, :])

    def step(rows, var_id):
        rows = _sequential_row_update(
            plan, tables, rows, var_id, jax.random.fold_in(bin_rng_key, var_id)
        )
        return rows, None

    rows, _ = lax.scan(step, rows, var_ids)
    return bins_to_state(plan, rows_to_bins(plan, rows)[0], value_rng_key, state)
