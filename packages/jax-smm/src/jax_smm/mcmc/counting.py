"""Factor-cell counts of the chains, accumulated over sweeps.

A fit needs, after every sweep, how many chains sit in each cell of each factor
table. A scatter-add of every (factor, chain) cell index does this for any
graph, but on XLA:CPU it runs as a serial loop (about 3 ns per element) and on
binary grids it cost more than the sweep itself. Each factor group (factors of
one table shape, contiguous in the flat parameter vector) is therefore counted
by the cheapest exact method that applies:

* ``"gram"`` (unary and pair groups of dense plans, see
  :func:`~jax_smm.mcmc.conditionals.pair_path`): the Gram matrix
  ``onehot @ onehot.T`` of the one-hot states holds the joint counts of every
  pair of rows; a matrix product runs near the machine's peak, so counting all
  9,180 pair tables of an all-pairs Potts model costs less than one sweep. The
  last state is left out of the product (0.64x the work at ``K = 5``): its
  counts follow from the others and the number of samples;
* ``"binary"`` (tables of shape ``(2,)`` and ``(2, 2)`` in binary plans): per
  row the number of chains in state 1, per pair factor the number with both
  variables in state 1; the other cells follow by inclusion-exclusion;
* ``"scatter"`` (everything else, triples always): the scatter-add.

Per sweep only the sufficient statistics (the Gram matrix, the state-1 counts,
the scatter vector) are summed; they become cell counts once, in
:func:`counts_from_stats`.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp

from jax_smm.compile import Plan
from jax_smm.mcmc.conditionals import ChainState, onehot_rows, pair_path

CountMethod = Literal["gram", "binary", "scatter"]


class FactorGroup(NamedTuple):
    """Where one factor group lives in the plan (all static).

    Attributes
    ----------
    shape : tuple of int
        Table shape of every factor of the group.
    factors : tuple of int
        First and one-past-last plan index of its factors.
    cells : tuple of int
        First and one-past-last position of its cells in the flat vector.
    method : str
        How it is counted.
    """

    shape: tuple[int, ...]
    factors: tuple[int, int]
    cells: tuple[int, int]
    method: CountMethod


class CountStats(NamedTuple):
    """Sufficient statistics summed over sweeps (``None`` where unused).

    Attributes
    ----------
    gram : float32[R * (K - 1), R * (K - 1)] or None
        Summed ``onehot @ onehot.T`` over the states ``0 .. K - 2`` of every
        row.
    ones : float32[R] or None
        Per row, the number of (sweep, chain) samples in state 1.
    both_ones : tuple of float32[F_g]
        Per binary pair group, the number of samples with both variables in
        state 1.
    scatter : float32[P] or None
        Scatter-added cells of the ``"scatter"`` groups.
    """

    gram: jax.Array | None
    ones: jax.Array | None
    both_ones: tuple[jax.Array, ...]
    scatter: jax.Array | None


def factor_groups(plan: Plan) -> tuple[FactorGroup, ...]:
    """The plan's factor groups with their counting method."""
    dense = pair_path(plan) == "dense"
    groups = []
    factor_start = cell_start = 0
    for shape, size in zip(plan.group_shapes, plan.group_sizes, strict=True):
        order = len(shape)
        if dense and order <= 2:
            method: CountMethod = "gram"
        elif plan.max_card == 2 and order <= 2 and all(s == 2 for s in shape):
            method = "binary"
        else:
            method = "scatter"
        cell_stop = cell_start + size * math.prod(shape)
        groups.append(
            FactorGroup(
                shape,
                (factor_start, factor_start + size),
                (cell_start, cell_stop),
                method,
            )
        )
        factor_start, cell_start = factor_start + size, cell_stop
    return tuple(groups)


def _group_rows(plan: Plan, group: FactorGroup) -> jax.Array:
    """``int32[F_g, order]``: the row of each variable of each factor."""
    start, stop = group.factors
    return plan.row_of_var[plan.factor_vars[start:stop, : len(group.shape)]]


def init_stats(plan: Plan) -> CountStats:
    """Zero statistics for ``plan``."""
    groups = factor_groups(plan)
    methods = {g.method for g in groups}
    width = plan.num_rows * (plan.max_card - 1)
    return CountStats(
        gram=jnp.zeros((width, width), jnp.float32) if "gram" in methods else None,
        ones=jnp.zeros(plan.num_rows, jnp.float32) if "binary" in methods else None,
        both_ones=tuple(
            jnp.zeros(g.factors[1] - g.factors[0], jnp.float32)
            for g in groups
            if g.method == "binary" and len(g.shape) == 2
        ),
        scatter=(
            jnp.zeros(plan.num_params, jnp.float32) if "scatter" in methods else None
        ),
    )


def scatter_cells(plan: Plan, group: FactorGroup, rows: jax.Array) -> jax.Array:
    """Flat cell index ``int32[F_g, C]`` of every factor of ``group``, every chain."""
    start, stop = group.factors
    order = len(group.shape)
    strides = plan.factor_strides[start:stop, :order]
    factor_rows = _group_rows(plan, group)
    cells = plan.factor_offset[start:stop, None]
    for j in range(order):
        cells = cells + rows[factor_rows[:, j]] * strides[:, j, None]
    return cells


def add_counts(plan: Plan, stats: CountStats, state: ChainState) -> CountStats:
    """Add the statistics of one sweep's states to ``stats``."""
    rows = state.rows
    gram, ones, scatter = stats.gram, stats.ones, stats.scatter
    if gram is not None:
        onehot = state.onehot
        if onehot is None:
            onehot = onehot_rows(rows, plan.max_card)
        gram = gram + jnp.dot(onehot, onehot.T)
    if ones is not None:
        ones = ones + jnp.sum(rows, axis=1, dtype=jnp.float32)
    both_ones = []
    for group in factor_groups(plan):
        if group.method == "binary" and len(group.shape) == 2:
            factor_rows = _group_rows(plan, group)
            both = rows[factor_rows[:, 0]] * rows[factor_rows[:, 1]]
            both_ones.append(jnp.sum(both, axis=1, dtype=jnp.float32))
        elif group.method == "scatter":
            # One scatter per group: with the groups' cells concatenated, XLA
            # fused the concatenation into the scatter loop (3.5x slower).
            scatter = scatter.at[scatter_cells(plan, group, rows)].add(1.0)
    return CountStats(
        gram,
        ones,
        tuple(b + new for b, new in zip(stats.both_ones, both_ones, strict=True)),
        scatter,
    )


def _gram_counts(
    plan: Plan, gram: jax.Array, factor_rows: jax.Array, n: jax.Array
) -> jax.Array:
    """Full ``K``- or ``K x K``-state counts of unary or pair factors from a Gram.

    ``gram`` covers the states ``0 .. K - 2``; the last state's counts are what
    the others leave of each variable's ``n`` samples (a padding state's count
    comes out 0, as it should).

    Parameters
    ----------
    plan : Plan
    gram : float32[R * (K - 1), R * (K - 1)]
    factor_rows : int32[F_g, order]
        Row of each variable of each factor (order 1 or 2).
    n : float32 scalar
        Number of samples.

    Returns
    -------
    float32[F_g, K] or float32[F_g, K, K]
    """
    k = plan.max_card
    gram = gram.reshape(plan.num_rows, k - 1, plan.num_rows, k - 1)
    states = jnp.arange(k - 1)

    def unary(r: jax.Array) -> jax.Array:
        core = gram[r[:, None], states, r[:, None], states]  # (F, K - 1)
        return jnp.concatenate([core, n - core.sum(1, keepdims=True)], axis=1)

    first = unary(factor_rows[:, 0])
    if factor_rows.shape[1] == 1:
        return first
    second = unary(factor_rows[:, 1])
    core = gram[
        factor_rows[:, 0, None, None],
        states[:, None],
        factor_rows[:, 1, None, None],
        states,
    ]  # (F, K - 1, K - 1)
    last_col = first[:, : k - 1] - core.sum(2)  # counts of (a, K - 1)
    last_row = second - jnp.concatenate(
        [core.sum(1), last_col.sum(1, keepdims=True)], 1
    )
    top = jnp.concatenate([core, last_col[:, :, None]], axis=2)
    return jnp.concatenate([top, last_row[:, None, :]], axis=1)


def counts_from_stats(plan: Plan, stats: CountStats, num_samples: int) -> jax.Array:
    """Flat cell counts ``float32[P]`` from statistics of ``num_samples`` states.

    Parameters
    ----------
    plan : Plan
    stats : CountStats
        Statistics summed over ``num_samples`` (sweeps times chains) states.
    num_samples : int
        Number of states the statistics were summed over.
    """
    n = jnp.float32(num_samples)
    both_ones = iter(stats.both_ones)
    parts = []
    for group in factor_groups(plan):
        if group.method == "scatter":
            parts.append(stats.scatter[group.cells[0] : group.cells[1]])
            continue
        factor_rows = _group_rows(plan, group)
        if group.method == "gram":
            counts = _gram_counts(plan, stats.gram, factor_rows, n)
            counts = counts[(slice(None), *(slice(0, c) for c in group.shape))]
        elif len(group.shape) == 1:
            first = stats.ones[factor_rows[:, 0]]
            counts = jnp.stack([n - first, first], axis=1)
        else:
            first = stats.ones[factor_rows[:, 0]]
            second = stats.ones[factor_rows[:, 1]]
            both = next(both_ones)
            counts = jnp.stack(
                [
                    jnp.stack([n - first - second + both, second - both], axis=1),
                    jnp.stack([first - both, both], axis=1),
                ],
                axis=1,
            )
        parts.append(counts.ravel())
    return jnp.concatenate(parts)
