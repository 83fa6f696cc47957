"""Gibbs kernels over the discrete states (categories or bins) of a factor graph.

Two kernels sample the same distribution ``p(x) ∝ exp(sum_f theta_f[x_f])``:

* the *sequential* kernel (:func:`gibbs_update`, :func:`gibbs_sweep`,
  :class:`SequentialGibbs`) visits the variables one at a time in id order and
  draws each from its full conditional; it is the reference;
* the *chromatic* kernel (:class:`ChromaticGibbs`, the default everywhere)
  updates every variable of one colour class at once, in every chain at once.
  Variables of one colour share no factor, so their conditionals are
  independent given the other colours and the block update is exact Gibbs.

Both work on the plan's colour-blocked layout: a state is ``int32[R, chains]``
(rows = variables grouped by colour, chains on the last, contiguous axis), and
each conditional is built from the plan's pre-oriented incidence tables. The
chromatic kernel draws one uniform per update and inverts the conditional CDF;
the sequential one uses ``jax.random.categorical``, so the two share no sampling
code beyond the conditional logits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jax_smm.energy import extended_params
from jax_smm.features import State, bins_to_state, state_to_bins
from jax_smm.graph import FactorGraph, Plan
from jax_smm.mcmc import threefry

UNROLLED_DEGREE = 16


class SamplerTables(NamedTuple):
    """Conditional tables gathered from the parameters, once per parameter value.

    Attributes
    ----------
    unary : float32[R, K]
        Summed unary log-potentials per row and state, ``-inf`` on padding states.
    pair : float32[R, D2, K, K]
        Pair tables oriented ``[own state, other state]``.
    triple : float32[R, D3, K, K, K]
        Triple tables oriented ``[own state, first other, second other]``.
    """

    unary: jax.Array
    pair: jax.Array
    triple: jax.Array


class KernelInfo(NamedTuple):
    """Diagnostics of a batch of sweeps.

    Attributes
    ----------
    move_rate : float32[n]
        Per variable, the fraction of its updates (over sweeps and chains) that
        changed its state or bin.
    """

    move_rate: jax.Array


def sampler_tables(plan: Plan, theta_ext: jax.Array) -> SamplerTables:
    """Gather the oriented conditional tables from flat extended parameters."""
    return SamplerTables(
        unary=jnp.sum(theta_ext[plan.unary_cells], axis=1) + plan.state_mask,
        pair=theta_ext[plan.pair_cells],
        triple=theta_ext[plan.triple_cells],
    )


def bins_to_rows(plan: Plan, bins: jax.Array) -> jax.Array:
    """``int32[chains, n]`` per-variable bins -> ``int32[R, chains]`` row layout."""
    padded = jnp.concatenate([bins.T, jnp.zeros((1, bins.shape[0]), bins.dtype)])
    return padded[plan.var_of_row]


def rows_to_bins(plan: Plan, rows: jax.Array) -> jax.Array:
    """``int32[R, chains]`` row layout -> ``int32[chains, n]`` per-variable bins."""
    return rows[plan.row_of_var].T


def row_block(a: jax.Array, start: jax.Array, size: int) -> jax.Array:
    """Rows ``start .. start + size - 1`` of ``a`` (``start`` may be traced)."""
    return lax.dynamic_slice_in_dim(a, start, size, axis=0)


def block_logits(
    plan: Plan, tables: SamplerTables, rows: jax.Array, start: jax.Array, size: int
) -> jax.Array:
    """Conditional logits of the rows ``start .. start + size - 1``.

    Parameters
    ----------
    plan : Plan
    tables : SamplerTables
    rows : int32[R, chains]
        Current states in row layout.
    start : int32 scalar
        First row of the block (may be traced).
    size : int
        Number of rows (static).

    Returns
    -------
    jax.Array
        ``float32[size, K, chains]``: ``log p(x_r = k | rest) + const``.
    """
    k = plan.max_card
    block = partial(row_block, start=start, size=size)
    logits = jnp.broadcast_to(block(tables.unary)[:, :, None], (size, k, rows.shape[1]))
    states = jnp.arange(k, dtype=rows.dtype)[:, None]
    if plan.pair_degree:
        # Low degree: select the table column of each neighbour's state with a
        # chain of selects, which vectorises along the chain axis (XLA:CPU
        # gathers of small tables and one-hot contractions are slower there);
        # slot d only visits the rows up to ``pair_prefix[d]`` that can have
        # one. High degree: one one-hot contraction (a matrix product) over
        # every incidence keeps the program small and was faster on dense graphs.
        other = rows[block(plan.pair_rows)]  # (S, D2, C)
        pair = block(tables.pair)  # (S, D2, K, K)
        if plan.pair_degree <= UNROLLED_DEGREE:
            for d, end in enumerate(plan.pair_prefix):
                column = pair[:end, d, :, 0, None]
                for state in range(1, k):
                    column = jnp.where(
                        other[:end, d, None, :] == state,
                        pair[:end, d, :, state, None],
                        column,
                    )
                logits = logits.at[:end].add(column)
        else:
            onehot = (other[:, :, None, :] == states).astype(jnp.float32)
            logits = logits + jnp.einsum("sdkl,sdlc->skc", pair, onehot)
    if plan.triple_degree:
        # Gather each triple table's row by the pair of neighbour states (a
        # three-operand einsum let XLA build a (S, D3, K, K, K, C) intermediate);
        # slot d only visits the rows up to ``triple_prefix[d]``.
        others = rows[block(plan.triple_rows)]  # (S, D3, 2, C)
        pair_state = others[:, :, 0, :] * k + others[:, :, 1, :]  # (S, D3, C)
        triple = block(tables.triple)
        flat = triple.reshape(*triple.shape[:3], k * k)  # (S, D3, K, K*K)
        for d, end in enumerate(plan.triple_prefix):
            logits = logits.at[:end].add(
                jnp.take_along_axis(flat[:end, d], pair_state[:end, d, None, :], axis=2)
            )
    return logits


def is_binary_pairwise(plan: Plan) -> bool:
    """Whether the binary fast path applies: K <= 2, no triples, low degree."""
    return (
        plan.max_card == 2
        and plan.triple_degree == 0
        and plan.pair_degree <= UNROLLED_DEGREE
    )


def binary_coefficients(tables: SamplerTables) -> tuple[jax.Array, jax.Array]:
    """Logit difference of a binary row as ``base + sum_d coef_d * x_d``.

    Since ``T[1, y] - T[0, y] = a + b y`` for ``y`` in ``{0, 1}``, the difference
    ``logit(1) - logit(0)`` is ``base = u_1 - u_0 + sum_d a_d`` plus ``b_d`` for
    every neighbour ``d`` in state 1. Padding rows get ``base = -inf`` (state 0).

    Returns
    -------
    base : float32[R]
    coef : float32[R, D2]
    """
    pair = tables.pair
    a = pair[:, :, 1, 0] - pair[:, :, 0, 0]
    b = pair[:, :, 1, 1] - pair[:, :, 0, 1] - a
    base = tables.unary[:, 1] - tables.unary[:, 0] + jnp.sum(a, axis=1)
    return base, b


def binary_block_draw(
    plan: Plan,
    coefficients: tuple[jax.Array, jax.Array],
    rows: jax.Array,
    start: jax.Array,
    size: int,
    uniforms: jax.Array,
) -> jax.Array:
    """Draw rows ``start .. start + size - 1`` of a binary pairwise graph.

    State 1 is taken when ``u (1 + exp(-delta)) < 1``, i.e. with probability
    ``sigmoid(delta)``, ``delta`` being the logit difference: one select per
    incidence, half the work of the general path (1.6x faster, measured).
    """
    block = partial(row_block, start=start, size=size)
    base, coef = (block(c) for c in coefficients)
    other = rows[block(plan.pair_rows)]  # (S, D2, C)
    delta = base[:, None]
    for d in range(plan.pair_degree):
        delta = delta + jnp.where(other[:, d] == 1, coef[:, d, None], 0.0)
    return (uniforms * (1.0 + jnp.exp(-delta)) < 1.0).astype(rows.dtype)


def inverse_cdf_sample(logits: jax.Array, uniforms: jax.Array) -> jax.Array:
    """Draw ``int32[S, C]`` states from ``logits[S, K, C]`` with one uniform each.

    The running sum over the (small, static) state axis is unrolled: XLA:CPU
    lowers ``cumsum`` to a windowed reduction that does not fuse.
    """
    weights = jnp.exp(logits - jnp.max(logits, axis=1, keepdims=True))
    cdf = [weights[:, 0]]
    for j in range(1, logits.shape[1]):
        cdf.append(cdf[-1] + weights[:, j])
    # u < 1 keeps the threshold below cdf[-1], which padding states (weight 0)
    # share with the last valid state, so they are never drawn.
    threshold = uniforms * cdf[-1]
    state = jnp.zeros(uniforms.shape, jnp.int32)
    for below in cdf[:-1]:
        state = state + (below < threshold).astype(jnp.int32)
    return state


def cell_counts(plan: Plan, rows: jax.Array) -> jax.Array:
    """Counts of every factor cell over the chains, ``float32[P + 1]``."""
    num_f = plan.num_factors
    factor_rows = plan.row_of_var[plan.factor_vars[:num_f]]  # (F, 3)
    strides = plan.factor_strides[:num_f, :, None]
    cells = plan.factor_offset[:num_f, None] + jnp.sum(
        rows[factor_rows] * strides, axis=1
    )
    return jnp.zeros(plan.num_params + 1, jnp.float32).at[cells].add(1.0)


SweepFn = Callable[[jax.Array, jax.Array], jax.Array]


def _run_sweeps(
    plan: Plan,
    rows: jax.Array,
    key: jax.Array,
    n_sweeps: int,
    sweep: SweepFn,
    accumulate: bool,
) -> tuple[jax.Array, jax.Array, KernelInfo]:
    """Run ``n_sweeps`` sweeps, accumulating cell counts after every sweep."""
    chains = rows.shape[1]
    counts = jnp.zeros(plan.num_params + 1, jnp.float32)
    moves = jnp.zeros(plan.num_rows, jnp.float32)

    def body(carry, sweep_key):
        old, counts, moves = carry
        rows = sweep(old, sweep_key)
        # Every variable is updated exactly once per sweep, so comparing the
        # sweep's start and end tells whether its update moved it. (Counting
        # inside the colour step made XLA recompute the draw for the count.)
        moves = moves + jnp.sum(rows != old, axis=1, dtype=jnp.float32)
        if accumulate:
            counts = counts + cell_counts(plan, rows)
        return (rows, counts, moves), None

    (rows, counts, moves), _ = lax.scan(
        body, (rows, counts, moves), jax.random.split(key, n_sweeps)
    )
    info = KernelInfo(move_rate=moves[plan.row_of_var] / (n_sweeps * chains))
    return rows, counts[:-1], info


@dataclass(frozen=True)
class ChromaticGibbs:
    """Block Gibbs by colour classes: every variable of a colour at once.

    The default kernel. One ``lax.scan`` step per colour keeps each colour's new
    states materialised before the next colour reads them.
    """

    def sweep_fn(self, plan: Plan, tables: SamplerTables) -> SweepFn:
        """Return ``(rows, key) -> rows`` for one sweep."""
        size = plan.colour_size
        binary = binary_coefficients(tables) if is_binary_pairwise(plan) else None

        def colour_step(carry, colour):
            rows, key = carry
            start = colour * size
            uniforms = threefry.uniform(
                jax.random.fold_in(key, colour), (size, rows.shape[1])
            )
            if binary is None:
                logits = block_logits(plan, tables, rows, start, size)
                new = inverse_cdf_sample(logits, uniforms)
            else:
                new = binary_block_draw(plan, binary, rows, start, size, uniforms)
            rows = lax.dynamic_update_slice_in_dim(rows, new, start, axis=0)
            return (rows, key), None

        def sweep(rows, key):
            (rows, _), _ = lax.scan(
                colour_step, (rows, key), jnp.arange(plan.num_colours)
            )
            return rows

        return sweep

    def sample_bins(
        self,
        plan: Plan,
        theta_ext: jax.Array,
        bins: jax.Array,
        key: jax.Array,
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
        key : jax.Array
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
        rows, counts, info = _run_sweeps(
            plan, bins_to_rows(plan, bins), key, n_sweeps, sweep, accumulate
        )
        return rows_to_bins(plan, rows), counts, info


def _sequential_row_update(
    plan: Plan, tables: SamplerTables, rows: jax.Array, var_id: jax.Array, key
) -> jax.Array:
    """Redraw variable ``var_id`` in every chain from its full conditional."""
    row = plan.row_of_var[var_id]
    logits = block_logits(plan, tables, rows, row, 1)[0]  # (K, C)
    new = jax.random.categorical(key, logits, axis=0).astype(rows.dtype)
    return rows.at[row].set(new)


@dataclass(frozen=True)
class SequentialGibbs:
    """Sequential-scan Gibbs in variable-id order (the reference kernel)."""

    def sweep_fn(self, plan: Plan, tables: SamplerTables) -> SweepFn:
        """Return ``(rows, key) -> rows`` for one sweep."""

        def step(carry, var_id):
            rows, key = carry
            rows = _sequential_row_update(
                plan, tables, rows, var_id, jax.random.fold_in(key, var_id)
            )
            return (rows, key), None

        def sweep(rows, key):
            (rows, _), _ = lax.scan(step, (rows, key), jnp.arange(plan.num_vars))
            return rows

        return sweep

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
    key: jax.Array,
    theta_groups: tuple[jax.Array, ...] | None,
    var_ids: jax.Array,
) -> State:
    """Sequential updates of ``var_ids`` on a single state pytree."""
    plan = graph.plan
    groups = graph.theta_groups if theta_groups is None else theta_groups
    tables = sampler_tables(plan, extended_params(groups))
    bin_key, value_key = jax.random.split(key)
    rows = bins_to_rows(plan, state_to_bins(plan, state)[None, :])

    def step(rows, var_id):
        rows = _sequential_row_update(
            plan, tables, rows, var_id, jax.random.fold_in(bin_key, var_id)
        )
        return rows, None

    rows, _ = lax.scan(step, rows, var_ids)
    return bins_to_state(plan, rows_to_bins(plan, rows)[0], value_key, state)
