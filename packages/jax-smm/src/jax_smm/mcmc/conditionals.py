"""Full conditionals of a color block and the draws from them.

The chromatic kernel updates a block of rows (the variables of one color) in
every chain at once. This module builds the conditional log-potentials of such
a block and draws from them with one uniform per update (inverse CDF). Which
computation applies is decided once per plan from its static shape
(:func:`pair_path`); each was chosen by measurement on XLA:CPU:

* ``"binary"`` (``K = 2``, pairs only, low degree): the logit difference, one
  select per incidence;
* ``"select"`` (``K <= SELECT_MAX_CARD``, pairs only, low degree): the logits are
  a *list* of ``K`` arrays ``float32[S, C]``, each pair table's column picked by
  the neighbor's state with a chain of selects, and the maximum and running sum
  over states unrolled, so a block is one vectorized loop over ``(rows,
  chains)`` (3x faster than ``(S, K, C)`` arrays at ``K = 8`` on the grid);
* ``"table"`` (low degree with triple factors or ``K > SELECT_MAX_CARD``): one
  ``(S, K, C)`` array per block, table columns picked by selects (small ``K``)
  or gathers, triples by gathers on the pair of neighbor states (fused into
  one list-form loop, those gathers ran 3x slower);
* ``"onehot"`` (high degree): a one-hot contraction over the gathered
  neighbors;
* ``"dense"`` (high degree and small enough, e.g. an all-pairs Potts model): a
  matrix product of the block's coupling rows with the one-hot states of every
  row, which the kernel keeps up to date instead of gathering neighbors. The
  last state is left out of the one-hot rows (its table column is subtracted
  from the others and added to a per-row bias): 20 % less to read per block.

Inside a color block rows go by decreasing degree; a block is drawn in row
ranges (:func:`block_segments`) that visit only the incidence slots they can
have, each range its own loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jax_smm.compile import Plan

UNROLLED_DEGREE = 16
SELECT_MAX_CARD = 8
DENSE_MAX_WIDTH = 2048

PairPath = Literal["binary", "select", "table", "onehot", "dense"]


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
    coupling : float32[R * K, R * (K - 1)] or None
        Dense plans only: ``coupling[r * K + k, q * (K - 1) + l]`` is
        ``T_rq[k, l] - T_rq[k, K - 1]``, ``T_rq`` being the summed pair
        log-potentials of rows ``r`` and ``q`` (``[state of r, state of q]``).
    coupling_bias : float32[R, K] or None
        Dense plans only: ``sum_q T_rq[k, K - 1]``, so that the pair part of the
        logits is ``coupling_bias + coupling @ onehot``.
    binary : tuple of (float32[R], float32[R, D2]) or None
        Binary plans only: :func:`binary_coefficients`.
    """

    unary: jax.Array
    pair: jax.Array
    triple: jax.Array
    coupling: jax.Array | None
    coupling_bias: jax.Array | None
    binary: tuple[jax.Array, jax.Array] | None


class ChainState(NamedTuple):
    """The chains in the sampler's row layout.

    Attributes
    ----------
    rows : int32[R, C]
        State (category or bin) of every row in every chain.
    onehot : float32[R * (K - 1), C] or None
        Dense plans only: :func:`onehot_rows` of ``rows``.
    """

    rows: jax.Array
    onehot: jax.Array | None


def pair_path(plan: Plan) -> PairPath:
    """How the conditionals of ``plan`` are computed (see the module docstring).

    Returns
    -------
    str
        ``"binary"``, ``"select"``, ``"table"`` (low degree, up to
        ``UNROLLED_DEGREE`` pair incidences), ``"dense"`` (more, with a
        coupling matrix of at most ``DENSE_MAX_WIDTH`` rows that is at most
        twice as long per row as the padded incidence list) or ``"onehot"``.
    """
    k, degree = plan.max_card, plan.pair_degree
    if degree <= UNROLLED_DEGREE:
        if plan.triple_degree or k > SELECT_MAX_CARD:
            return "table"
        return "binary" if k == 2 else "select"
    if plan.num_rows * k <= DENSE_MAX_WIDTH and plan.num_rows <= 2 * degree:
        return "dense"
    return "onehot"


def sampler_tables(plan: Plan, theta_ext: jax.Array) -> SamplerTables:
    """Gather the oriented conditional tables from flat extended parameters."""
    unary = jnp.sum(theta_ext[plan.unary_cells], axis=1) + plan.state_mask
    pair = theta_ext[plan.pair_cells]
    coupling = coupling_bias = binary = None
    path = pair_path(plan)
    if path == "dense":
        r, k = plan.num_rows, plan.max_card
        blocks = jnp.zeros((r, r, k, k), jnp.float32)
        blocks = blocks.at[jnp.arange(r)[:, None], plan.pair_rows].add(pair)
        last = blocks[..., k - 1 :]  # (R, R, K, 1)
        coupling_bias = jnp.sum(last[..., 0], axis=1)
        coupling = blocks[..., : k - 1] - last
        coupling = coupling.transpose(0, 2, 1, 3).reshape(r * k, r * (k - 1))
    elif path == "binary":
        binary = binary_coefficients(unary, pair)
    return SamplerTables(
        unary=unary,
        pair=pair,
        triple=theta_ext[plan.triple_cells],
        coupling=coupling,
        coupling_bias=coupling_bias,
        binary=binary,
    )


def onehot_rows(rows: jax.Array, num_states: int) -> jax.Array:
    """One-hot rows of every state but the last.

    Parameters
    ----------
    rows : int32[S, C]
    num_states : int
        ``K``.

    Returns
    -------
    float32[S * (K - 1), C]
        Row ``s * (K - 1) + k`` is ``rows[s] == k`` (the last state is what the
        others leave).
    """
    states = jnp.arange(num_states - 1, dtype=rows.dtype)[:, None]
    onehot = (rows[:, None, :] == states).astype(jnp.float32)
    return onehot.reshape(rows.shape[0] * (num_states - 1), rows.shape[1])


def chain_state(plan: Plan, rows: jax.Array) -> ChainState:
    """Wrap row-layout states, adding the one-hot rows a dense plan samples with."""
    dense = pair_path(plan) == "dense"
    return ChainState(rows, onehot_rows(rows, plan.max_card) if dense else None)


def set_block(
    plan: Plan, state: ChainState, new: jax.Array, start: jax.Array
) -> ChainState:
    """Write ``new`` (``int32[S, C]``) into rows ``start ..`` of ``state``."""
    rows = lax.dynamic_update_slice_in_dim(state.rows, new, start, axis=0)
    onehot = state.onehot
    if onehot is not None:
        k = plan.max_card
        onehot = lax.dynamic_update_slice_in_dim(
            onehot, onehot_rows(new, k), start * (k - 1), axis=0
        )
    return ChainState(rows, onehot)


def row_block(a: jax.Array, start: jax.Array, size: int) -> jax.Array:
    """Rows ``start .. start + size - 1`` of ``a`` (``start`` may be traced)."""
    return lax.dynamic_slice_in_dim(a, start, size, axis=0)


def neighbor_states(rows: jax.Array, index: jax.Array, start: jax.Array) -> jax.Array:
    """``rows[index]``, materialized before the draw that reads it.

    Fused into the draw, this row gather becomes a scalar gather per element
    and the draw's loop stops vectorizing (3-4x slower at ``K <= 4``); XLA:CPU
    fuses nothing across a conditional, and ``lax.optimization_barrier`` is
    removed before fusion, so the gather sits in a conditional whose predicate
    (``start >= 0``, always true) XLA cannot fold.

    Parameters
    ----------
    rows : int32[R, C]
    index : int32[...]
        Rows to gather.
    start : int32 scalar
        A traced row index (never negative).
    """
    shape = (*index.shape, *rows.shape[1:])
    return lax.cond(
        start >= 0, lambda i: rows[i], lambda i: jnp.zeros(shape, rows.dtype), index
    )


def select_column(states: jax.Array, table_rows: jax.Array) -> jax.Array:
    """``table_rows[s, ..., states[s, c]]`` by a chain of selects.

    Parameters
    ----------
    states : int32[S, C]
    table_rows : float32[S, K] or float32[S, K', K]
        Indexed on the last axis; the middle axis, if any, is kept.

    Returns
    -------
    float32[S, C] or float32[S, K', C]
    """
    if table_rows.ndim == 3:
        states = states[:, None, :]
    out = table_rows[..., :1]
    for state in range(1, table_rows.shape[-1]):
        out = jnp.where(states == state, table_rows[..., state, None], out)
    return jnp.broadcast_to(out, jnp.broadcast_shapes(out.shape, states.shape))


def gather_column(states: jax.Array, table_rows: jax.Array) -> jax.Array:
    """``table_rows[s, :, states[s, c]]`` by a gather: ``float32[S, K', C]``."""
    index = jnp.broadcast_to(
        states[:, None, :], (*table_rows.shape[:2], states.shape[1])
    )
    return jnp.take_along_axis(table_rows, index, axis=2)


class Segment(NamedTuple):
    """Rows ``start .. stop - 1`` of every color block and the slots they use.

    Attributes
    ----------
    start, stop : int
        Row range inside a color block.
    pair_slots, triple_slots : int
        Number of leading pair / triple incidence slots to visit.
    """

    start: int
    stop: int
    pair_slots: int
    triple_slots: int


MIN_SEGMENT_ROWS = 32


def block_segments(plan: Plan) -> tuple[Segment, ...]:
    """Split a color block into row ranges by the incidence slots they need.

    Rows go by decreasing degree inside a color block, and incidence slot ``d``
    is empty past row ``plan.pair_prefix[d]`` (``triple_prefix[d]``) of every
    block, so each range between two prefix values visits only the slots that
    can be real there. Ranges shorter than ``MIN_SEGMENT_ROWS`` join the range
    before them (visiting an empty slot is correct: its table is zero). Drawing
    the ranges separately, instead of padding each slot's contribution to the
    block, keeps every loop free of per-row branches (2x faster on the
    calibrated-response benchmark graph). Dense and one-hot plans visit every
    slot: one range.
    """
    size = plan.color_size
    if pair_path(plan) in ("dense", "onehot"):
        return (Segment(0, size, plan.pair_degree, plan.triple_degree),)
    cuts = sorted({0} | {p for p in plan.pair_prefix + plan.triple_prefix if p < size})
    starts = [cuts[0]]
    for cut in cuts[1:]:
        if cut - starts[-1] >= MIN_SEGMENT_ROWS:
            starts.append(cut)
    if size - starts[-1] < MIN_SEGMENT_ROWS and len(starts) > 1:
        starts.pop()
    return tuple(
        Segment(
            lo,
            hi,
            sum(p > lo for p in plan.pair_prefix),
            sum(p > lo for p in plan.triple_prefix),
        )
        for lo, hi in zip(starts, [*starts[1:], size], strict=True)
    )


def block_logits(
    plan: Plan,
    tables: SamplerTables,
    state: ChainState,
    start: jax.Array,
    segment: Segment,
) -> list[jax.Array] | jax.Array:
    """Conditional logits of the rows ``start + segment.start ..``.

    Parameters
    ----------
    plan : Plan
    tables : SamplerTables
    state : ChainState
        Current states.
    start : int32 scalar
        First row of the color block (may be traced).
    segment : Segment
        The rows of the block to compute and the incidence slots they use.

    Returns
    -------
    list of jax.Array or jax.Array
        ``log p(x_r = k | rest) + const`` of the segment's ``S`` rows: ``K``
        arrays ``float32[S, C]`` on the ``"select"`` path, else one
        ``float32[S, K, C]`` array.
    """
    k = plan.max_card
    rows = state.rows
    size = segment.stop - segment.start
    first = start + segment.start
    chains = rows.shape[1]
    block = partial(row_block, start=first, size=size)
    unary = block(tables.unary)
    path = pair_path(plan)
    if path == "select":
        other = neighbor_states(
            rows, block(plan.pair_rows[:, : segment.pair_slots]), first
        )
        pair = block(tables.pair)
        logits = [jnp.broadcast_to(unary[:, j, None], (size, chains)) for j in range(k)]
        for d in range(segment.pair_slots):
            for j in range(k):
                logits[j] = logits[j] + select_column(other[:, d], pair[:, d, j])
        return logits
    logits = jnp.broadcast_to(unary[:, :, None], (size, k, chains))
    if path == "dense":
        coupling = lax.dynamic_slice_in_dim(tables.coupling, first * k, size * k, 0)
        pair = jnp.dot(coupling, state.onehot).reshape(size, k, chains)
        logits = logits + block(tables.coupling_bias)[:, :, None] + pair
    elif path == "onehot":
        other = rows[block(plan.pair_rows)]  # (S, D2, C)
        onehot = (other[:, :, None, :] == jnp.arange(k)[:, None]).astype(jnp.float32)
        logits = logits + jnp.einsum("sdkl,sdlc->skc", block(tables.pair), onehot)
    elif segment.pair_slots:
        column = select_column if k <= SELECT_MAX_CARD else gather_column
        other = rows[block(plan.pair_rows[:, : segment.pair_slots])]
        pair = block(tables.pair)
        for d in range(segment.pair_slots):
            logits = logits + column(other[:, d], pair[:, d])
    if segment.triple_slots:
        slots = segment.triple_slots
        others = rows[block(plan.triple_rows[:, :slots])]  # (S, D3, 2, C)
        pair_state = others[:, :, 0, :] * k + others[:, :, 1, :]
        triple = block(tables.triple)
        flat = triple.reshape(*triple.shape[:3], k * k)  # (S, D3, K, K*K)
        for d in range(slots):
            logits = logits + gather_column(pair_state[:, d], flat[:, d])
    return logits


def inverse_cdf_sample(
    logits: Sequence[jax.Array] | jax.Array, uniforms: jax.Array
) -> jax.Array:
    """Draw ``int32[S, C]`` states from logits with one uniform each.

    Parameters
    ----------
    logits : list of float32[S, C] or float32[S, K, C]
        One array per state (the maximum over states is then unrolled into
        elementwise operations that fuse with the logits) or one array (the
        maximum is a reduction).
    uniforms : float32[S, C]

    Returns
    -------
    int32[S, C]
    """
    if isinstance(logits, jax.Array):
        weights = jnp.exp(logits - jnp.max(logits, axis=1, keepdims=True))
        weights = [weights[:, j] for j in range(weights.shape[1])]
    else:
        top = logits[0]
        for logit in logits[1:]:
            top = jnp.maximum(top, logit)
        weights = [jnp.exp(logit - top) for logit in logits]
    cdf = [weights[0]]
    for weight in weights[1:]:
        cdf.append(cdf[-1] + weight)
    # u < 1 keeps the threshold below cdf[-1], which padding states (weight 0)
    # share with the last valid state, so they are never drawn.
    threshold = uniforms * cdf[-1]
    state = jnp.zeros(uniforms.shape, jnp.int32)
    for below in cdf[:-1]:
        state = state + (below < threshold).astype(jnp.int32)
    return state


def binary_coefficients(
    unary: jax.Array, pair: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Logit difference of a binary row as ``base + sum_d coef_d * x_d``.

    Since ``T[1, y] - T[0, y] = a + b y`` for ``y`` in ``{0, 1}``, the difference
    ``logit(1) - logit(0)`` is ``base = u_1 - u_0 + sum_d a_d`` plus ``b_d`` for
    every neighbor ``d`` in state 1. Padding rows get ``base = -inf`` (state 0).

    Parameters
    ----------
    unary : float32[R, 2]
    pair : float32[R, D2, 2, 2]

    Returns
    -------
    base : float32[R]
    coef : float32[R, D2]
    """
    a = pair[:, :, 1, 0] - pair[:, :, 0, 0]
    b = pair[:, :, 1, 1] - pair[:, :, 0, 1] - a
    base = unary[:, 1] - unary[:, 0] + jnp.sum(a, axis=1)
    return base, b


def binary_block_draw(
    plan: Plan,
    coefficients: tuple[jax.Array, jax.Array],
    rows: jax.Array,
    start: jax.Array,
    segment: Segment,
    uniforms: jax.Array,
) -> jax.Array:
    """Draw the rows ``start + segment.start ..`` of a binary pairwise graph.

    State 1 is taken when ``u (1 + exp(-delta)) < 1``, i.e. with probability
    ``sigmoid(delta)``, ``delta`` being the logit difference: one select per
    incidence, half the work of the general path (1.6x faster, measured).
    """
    size = segment.stop - segment.start
    block = partial(row_block, start=start + segment.start, size=size)
    base, coef = (block(c) for c in coefficients)
    other = rows[block(plan.pair_rows[:, : segment.pair_slots])]  # (S, D2, C)
    delta = base[:, None]
    for d in range(segment.pair_slots):
        delta = delta + jnp.where(other[:, d] == 1, coef[:, d, None], 0.0)
    return (uniforms * (1.0 + jnp.exp(-delta)) < 1.0).astype(rows.dtype)


def draw_segment(
    plan: Plan,
    tables: SamplerTables,
    state: ChainState,
    start: jax.Array,
    segment: Segment,
    uniforms: jax.Array,
) -> jax.Array:
    """New states ``int32[S, C]`` of the rows ``start + segment.start ..``.

    Parameters
    ----------
    plan : Plan
    tables : SamplerTables
    state : ChainState
    start : int32 scalar
        First row of the color block (may be traced).
    segment : Segment
    uniforms : float32[S, C]
        One uniform per update.
    """
    if tables.binary is not None:
        return binary_block_draw(
            plan, tables.binary, state.rows, start, segment, uniforms
        )
    return inverse_cdf_sample(
        block_logits(plan, tables, state, start, segment), uniforms
    )


def defer_writes(plan: Plan) -> bool:
    """Whether the chromatic sweep writes each block one color step late.

    The block drawn at one step is then written at the next, so the draw is
    not fused into the in-place update of the rows, which XLA:CPU runs on one
    thread: a free-standing draw runs on every core. Measured on an idle
    2-core machine, this gains 1.5-1.7x on the ``"select"`` path (grid,
    ``K = 3 .. 8``) and nothing, or a loss, on the others.
    """
    return pair_path(plan) == "select"


def draw_block(
    plan: Plan,
    tables: SamplerTables,
    state: ChainState,
    start: jax.Array,
    uniforms: jax.Array,
) -> tuple[jax.Array, ...]:
    """New states of every row range of the color block at ``start``.

    Parameters
    ----------
    plan : Plan
    tables : SamplerTables
    state : ChainState
    start : int32 scalar
        First row of the block (may be traced).
    uniforms : float32[color_size, C]
        One uniform per update.

    Returns
    -------
    tuple of int32[S, C]
        One array per :func:`block_segments` range.
    """
    return tuple(
        draw_segment(
            plan, tables, state, start, segment, uniforms[segment.start : segment.stop]
        )
        for segment in block_segments(plan)
    )


def write_block(
    plan: Plan, state: ChainState, start: jax.Array, new: Sequence[jax.Array]
) -> ChainState:
    """Write the ranges drawn by :func:`draw_block` into the block at ``start``."""
    for segment, rows in zip(block_segments(plan), new, strict=True):
        state = set_block(plan, state, rows, start + segment.start)
    return state


def update_block(
    plan: Plan,
    tables: SamplerTables,
    state: ChainState,
    start: jax.Array,
    uniforms: jax.Array,
) -> ChainState:
    """Redraw the color block at ``start``, writing each range once drawn.

    Parameters
    ----------
    plan : Plan
    tables : SamplerTables
    state : ChainState
    start : int32 scalar
        First row of the block (may be traced).
    uniforms : float32[color_size, C]
        One uniform per update.

    Returns
    -------
    ChainState
        The states with the block's rows redrawn.
    """
    for segment in block_segments(plan):
        new = draw_segment(
            plan, tables, state, start, segment, uniforms[segment.start : segment.stop]
        )
        state = set_block(plan, state, new, start + segment.start)
    return state


def row_logits(
    plan: Plan, tables: SamplerTables, rows: jax.Array, row: jax.Array
) -> jax.Array:
    """Conditional logits ``float32[K, C]`` of one row, by plain gathers.

    The reference computation (used by the sequential kernel): every incidence
    slot, padding included (its table is zero), whatever the plan's path.
    """
    k = plan.max_card
    chains = rows.shape[1]
    other = rows[plan.pair_rows[row]]  # (D2, C)
    index = jnp.broadcast_to(other[:, None, :], (other.shape[0], k, chains))
    pair = jnp.take_along_axis(tables.pair[row], index, axis=2).sum(axis=0)
    others = rows[plan.triple_rows[row]]  # (D3, 2, C)
    pair_state = others[:, 0] * k + others[:, 1]
    flat = tables.triple[row].reshape(-1, k, k * k)
    index = jnp.broadcast_to(pair_state[:, None, :], (flat.shape[0], k, chains))
    triple = jnp.take_along_axis(flat, index, axis=2).sum(axis=0)
    return tables.unary[row][:, None] + pair + triple
