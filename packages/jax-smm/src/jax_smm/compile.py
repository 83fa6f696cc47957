"""Compilation of a factor graph into the :class:`Plan` the hot path works on.

Compiling is host-side NumPy work done once per graph structure. It stacks the
factor tables by ``(order, shape)`` into groups, writes flat integer "wiring"
arrays that locate every factor cell inside the concatenation of those groups,
colors the interaction graph (DSATUR: the variables of one factor always get
distinct colors, so a color class can be resampled at once) and lays the
variables out as color-blocked rows, each row holding the cells of its adjacent
factors oriented so that its own state comes first.

:func:`compile_plan` runs the steps below in order; each step is a small
function that returns plain NumPy arrays, so it can be checked on its own.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np

from jax_smm.checks import INT32_MAX, check_fits_in_memory

if TYPE_CHECKING:
    from jax_smm.graph import Factor, Variable

MAX_ORDER = 3  # largest factor order; the wiring arrays have this many columns


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class Plan:
    """The compiled, immutable description the hot path works on.

    Array fields are pytree leaves; every other field is static and hashable, so
    an equal plan built anew neither retraces nor breaks ``jit``.

    Attributes
    ----------
    group_shapes : tuple of tuple of int
        Table shape of each factor group (factors stacked by order and shape).
    group_sizes : tuple of int
        Number of factors in each group.
    cards : tuple of int
        Cardinality (states or bins) of every variable.
    max_card : int
        Largest cardinality.
    cat_vars, cont_vars : tuple of int
        Variable ids stored in ``state["cat"]`` and ``state["cont"]``, in order.
    cont_low, cont_high : tuple of float
        Bounds of the continuous variables, in ``cont_vars`` order.
    num_colors, color_size : int
        Number of color classes and the padded size of each.
    pair_degree, triple_degree, unary_degree : int
        Padded number of pair, triple and unary incidences per variable.
    pair_prefix, triple_prefix : tuple of int
        Per incidence slot ``d``: in every color block, the rows past
        ``prefix[d]`` have no real incidence in slot ``d`` (rows are ordered by
        decreasing degree inside a color), so the sampler skips them.
    factor_vars : int32[F + 1, 3]
        Variables of every factor in plan order (padded with 0); the extra last
        factor is padding.
    factor_strides : int32[F + 1, 3]
        Row-major strides of each factor's cells (0 for padding).
    factor_offset : int32[F + 1]
        Position of each factor's first cell in the flat parameter vector; the
        padding factor points at cell ``P``, an appended zero.
    var_factors : int32[n, A]
        Plan indices of the factors adjacent to each variable (``F`` = padding).
    row_of_var : int32[n]
        Row of every variable in the color-blocked sampler layout.
    var_of_row : int32[R]
        Variable of each row (``n`` for padding rows).
    unary_cells : int32[R, D1, K]
        Flat cell of each unary incidence of a row, per state (``P`` = zero).
    pair_rows : int32[R, D2]
        Row of the other variable of each pair incidence.
    pair_cells : int32[R, D2, K, K]
        Flat cell ``[state of row, state of other]`` of each pair incidence.
    triple_rows : int32[R, D3, 2]
        Rows of the two other variables of each triple incidence.
    triple_cells : int32[R, D3, K, K, K]
        Flat cell ``[state of row, state of first, state of second]``.
    state_mask : float32[R, K]
        0 for valid states, ``-inf`` for padding states of each row.
    """

    group_shapes: tuple[tuple[int, ...], ...] = field(metadata={"static": True})
    group_sizes: tuple[int, ...] = field(metadata={"static": True})
    cards: tuple[int, ...] = field(metadata={"static": True})
    max_card: int = field(metadata={"static": True})
    cat_vars: tuple[int, ...] = field(metadata={"static": True})
    cont_vars: tuple[int, ...] = field(metadata={"static": True})
    cont_low: tuple[float, ...] = field(metadata={"static": True})
    cont_high: tuple[float, ...] = field(metadata={"static": True})
    num_colors: int = field(metadata={"static": True})
    color_size: int = field(metadata={"static": True})
    pair_degree: int = field(metadata={"static": True})
    triple_degree: int = field(metadata={"static": True})
    unary_degree: int = field(metadata={"static": True})
    pair_prefix: tuple[int, ...] = field(metadata={"static": True})
    triple_prefix: tuple[int, ...] = field(metadata={"static": True})
    factor_vars: jax.Array
    factor_strides: jax.Array
    factor_offset: jax.Array
    var_factors: jax.Array
    row_of_var: jax.Array
    var_of_row: jax.Array
    unary_cells: jax.Array
    pair_rows: jax.Array
    pair_cells: jax.Array
    triple_rows: jax.Array
    triple_cells: jax.Array
    state_mask: jax.Array

    @property
    def num_vars(self) -> int:
        """Number of variables."""
        return len(self.cards)

    @property
    def num_factors(self) -> int:
        """Number of factors."""
        return sum(self.group_sizes)

    @property
    def num_params(self) -> int:
        """Length of the flat parameter vector (all factor cells)."""
        return sum(
            size * math.prod(shape)
            for size, shape in zip(self.group_sizes, self.group_shapes, strict=True)
        )

    @property
    def num_rows(self) -> int:
        """Rows of the color-blocked sampler layout."""
        return self.num_colors * self.color_size


def flatten_theta(theta_groups: Sequence[jax.Array]) -> jax.Array:
    """Concatenate stacked group tables into the flat parameter vector.

    Parameters
    ----------
    theta_groups : sequence of arrays
        One ``(F_g, *shape_g)`` array per factor group.

    Returns
    -------
    jax.Array
        ``float32[P]``, the cells of every factor in plan order.
    """
    return jnp.concatenate([jnp.ravel(t) for t in theta_groups])


def unflatten_theta(plan: Plan, flat: jax.Array) -> tuple[jax.Array, ...]:
    """Split a flat vector (parameters or moments) into stacked group tables."""
    out, start = [], 0
    for size, shape in zip(plan.group_sizes, plan.group_shapes, strict=True):
        stop = start + size * math.prod(shape)
        out.append(flat[start:stop].reshape((size, *shape)))
        start = stop
    return tuple(out)


def dsatur_coloring(neighbors: Sequence[set[int]]) -> list[int]:
    """Color a graph greedily by saturation degree (DSATUR).

    Parameters
    ----------
    neighbors : sequence of set of int
        Adjacency sets of an undirected graph.

    Returns
    -------
    list of int
        A color per vertex; adjacent vertices get different colors.
    """
    n = len(neighbors)
    colors = [-1] * n
    seen: list[set[int]] = [set() for _ in range(n)]
    heap = [(0, -len(neighbors[v]), v) for v in range(n)]
    heapq.heapify(heap)
    while heap:
        neg_sat, _, vertex = heapq.heappop(heap)
        if colors[vertex] >= 0 or -neg_sat != len(seen[vertex]):
            continue  # stale entry: already colored or saturation has grown
        color = next(c for c in range(n) if c not in seen[vertex])
        colors[vertex] = color
        for u in neighbors[vertex]:
            if colors[u] < 0 and color not in seen[u]:
                seen[u].add(color)
                heapq.heappush(heap, (-len(seen[u]), -len(neighbors[u]), u))
    return colors


def plan_bytes(num_rows: int, max_card: int, degrees: dict[int, int]) -> int:
    """Bytes of a plan's padded incidence tables and of their gathered values.

    Parameters
    ----------
    num_rows : int
        Rows of the color-blocked layout.
    max_card : int
        Largest cardinality ``K`` (every table is padded to it).
    degrees : dict of int to int
        Incidence slots per row for orders 1, 2 and 3.

    Returns
    -------
    int
        ``int32`` cells plus the ``float32`` tables a sampler gathers from them.
    """
    per_row = sum(d * (max_card**o + o) for o, d in degrees.items()) + max_card
    return 2 * 4 * num_rows * per_row


def _group_factors(
    factors: Sequence[Factor],
) -> tuple[tuple[tuple[int, ...], ...], tuple[tuple[int, ...], ...]]:
    """Group the factors by table shape, in order of first appearance.

    Returns
    -------
    group_shapes : tuple of tuple of int
        The table shape of each group.
    plan_order : tuple of tuple of int
        Per group, the positions (in ``factors``) of its members. Read group by
        group, this is the plan order of the factors: plan index ``i`` is the
        ``i``-th position of the concatenation.
    """
    groups: dict[tuple[int, ...], list[int]] = {}
    for pos, f in enumerate(factors):
        groups.setdefault(f.table_shape, []).append(pos)
    return tuple(groups), tuple(tuple(m) for m in groups.values())


def _factor_wiring(
    factors: Sequence[Factor], order: Sequence[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Locate every factor's cells in the flat parameter vector.

    Parameters
    ----------
    factors : sequence of Factor
        The factors, in graph order.
    order : sequence of int
        Positions in ``factors``, in plan order.

    Returns
    -------
    factor_vars : int32[F + 1, MAX_ORDER]
        Scope of each factor in plan order, padded with 0; the last row is the
        padding factor.
    factor_strides : int32[F + 1, MAX_ORDER]
        Row-major strides of each factor's cells (0 past its order).
    factor_offset : int32[F + 1]
        Flat position of each factor's first cell; the padding factor points at
        ``P``, the number of cells (where an appended zero lives).

    Raises
    ------
    ValueError
        If the cells do not fit the ``int32`` wiring.
    """
    num_cells = sum(math.prod(f.table_shape) for f in factors)
    if num_cells >= INT32_MAX:
        raise ValueError(
            f"factors: the graph has {num_cells} factor cells; the int32 wiring "
            f"holds at most {INT32_MAX - 1}"
        )
    num_f = len(order)
    factor_vars = np.zeros((num_f + 1, MAX_ORDER), np.int32)
    factor_strides = np.zeros((num_f + 1, MAX_ORDER), np.int32)
    factor_offset = np.zeros(num_f + 1, np.int32)
    offset = 0
    for i, pos in enumerate(order):
        f = factors[pos]
        strides = np.cumprod((*f.table_shape[1:], 1)[::-1])[::-1]
        factor_vars[i, : f.order] = f.var_ids
        factor_strides[i, : f.order] = strides
        factor_offset[i] = offset
        offset += math.prod(f.table_shape)
    factor_offset[num_f] = offset
    return factor_vars, factor_strides, factor_offset


def _adjacency(
    num_vars: int, factors: Sequence[Factor], order: Sequence[int]
) -> tuple[np.ndarray, list[set[int]]]:
    """Adjacent factors and neighbors of every variable.

    Returns
    -------
    var_factors : int32[n, A]
        Plan indices of the factors adjacent to each variable, in plan order,
        padded with ``F`` (the padding factor); ``A`` is the largest number of
        adjacent factors, at least 1.
    neighbors : list of set of int
        The interaction graph: the variables sharing a factor with each one.
    """
    adjacent: list[list[int]] = [[] for _ in range(num_vars)]
    neighbors: list[set[int]] = [set() for _ in range(num_vars)]
    for i, pos in enumerate(order):
        scope = factors[pos].var_ids
        for v in scope:
            adjacent[v].append(i)
            neighbors[v].update(u for u in scope if u != v)
    degree = max(1, max(len(a) for a in adjacent))
    var_factors = np.full((num_vars, degree), len(order), np.int32)
    for v, adj in enumerate(adjacent):
        var_factors[v, : len(adj)] = adj
    return var_factors, neighbors


def _order_degrees(num_vars: int, factors: Sequence[Factor]) -> np.ndarray:
    """Number of pair and triple factors each variable belongs to.

    Returns
    -------
    int32[n, 2]
        Column 0 counts pair factors, column 1 triple factors.
    """
    order_degree = np.zeros((num_vars, 2), np.int32)
    for f in factors:
        if f.order > 1:
            order_degree[list(f.var_ids), f.order - 2] += 1
    return order_degree


def _color_blocks(
    colors: Sequence[int], order_degree: np.ndarray
) -> tuple[tuple[int, ...], ...]:
    """The variables of each color, in the row order of their block.

    Inside a block, variables go by decreasing pair + triple degree, then
    decreasing pair degree, then id, so the sampler can stop each incidence slot
    at the last row that has one.

    Returns
    -------
    tuple of tuple of int
        Per color ``0 .. num_colors - 1``, its variables in row order.
    """
    num_colors = max(colors) + 1
    return tuple(
        tuple(
            sorted(
                (v for v, c in enumerate(colors) if c == color),
                key=lambda v: (
                    -int(order_degree[v].sum()),
                    -int(order_degree[v, 0]),
                    v,
                ),
            )
        )
        for color in range(num_colors)
    )


def _row_layout(
    blocks: Sequence[Sequence[int]], num_vars: int
) -> tuple[int, np.ndarray, np.ndarray]:
    """Place the color blocks, each padded to the largest, as consecutive rows.

    Returns
    -------
    color_size : int
        Rows per block (the size of the largest color class).
    row_of_var : int32[n]
        Row of every variable.
    var_of_row : int32[num_colors * color_size]
        Variable of every row, ``n`` for padding rows.
    """
    color_size = max(len(m) for m in blocks)
    row_of_var = np.zeros(num_vars, np.int32)
    var_of_row = np.full(len(blocks) * color_size, num_vars, np.int32)
    for c, members in enumerate(blocks):
        for j, v in enumerate(members):
            row_of_var[v] = c * color_size + j
            var_of_row[c * color_size + j] = v
    return color_size, row_of_var, var_of_row


Incidences = list[list[tuple[tuple[int, ...], np.ndarray]]]


def _oriented_incidences(
    num_vars: int,
    factors: Sequence[Factor],
    order: Sequence[int],
    factor_offset: np.ndarray,
) -> dict[int, Incidences]:
    """The flat cells of every factor, seen from each of its variables.

    Returns
    -------
    dict of int to list of list of (tuple of int, int array)
        For factor order 1, 2 and 3 and each variable, one entry per adjacent
        factor of that order, in plan order: the other variables of the scope
        (in scope order) and the factor's flat cell indices transposed so that
        the variable's own axis comes first, the others following in scope
        order.
    """
    incidences: dict[int, Incidences] = {
        o: [[] for _ in range(num_vars)] for o in range(1, MAX_ORDER + 1)
    }
    for i, pos in enumerate(order):
        f = factors[pos]
        size = math.prod(f.table_shape)
        cells = factor_offset[i] + np.arange(size).reshape(f.table_shape)
        for axis, v in enumerate(f.var_ids):
            others = tuple(u for u in f.var_ids if u != v)
            perm = (axis, *(a for a in range(f.order) if a != axis))
            incidences[f.order][v].append((others, np.transpose(cells, perm)))
    return incidences


def _padded_incidences(
    incidences: Incidences,
    order_: int,
    degree: int,
    row_of_var: np.ndarray,
    num_rows: int,
    max_card: int,
    zero_cell: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Write the incidences of one order into per-row padded arrays.

    Returns
    -------
    rows : int32[R, D, max(order - 1, 1)]
        Rows of the other variables of each incidence slot (0 when unused).
    cells : int32[R, D, K, ..., K]
        ``order`` axes of ``K = max_card`` per slot: the oriented flat cells of
        the incidence, ``zero_cell`` for padding states, slots and rows.
    """
    rows = np.zeros((num_rows, degree, max(order_ - 1, 1)), np.int32)
    cells = np.full((num_rows, degree) + (max_card,) * order_, zero_cell, np.int32)
    for v, slots in enumerate(incidences):
        r = row_of_var[v]
        for d, (others, table) in enumerate(slots):
            rows[r, d, : len(others)] = [row_of_var[u] for u in others]
            cells[(r, d, *(slice(0, s) for s in table.shape))] = table
    return rows, cells


def _slot_prefix(
    blocks: Sequence[Sequence[int]],
    order_degree: np.ndarray,
    order_: int,
    degree: int,
) -> tuple[int, ...]:
    """Per incidence slot of one order, the largest end of its real rows.

    Returns
    -------
    tuple of int
        ``degree`` entries: slot ``d`` holds a real incidence only in rows
        ``< prefix[d]`` of every color block (positions inside the block).
    """
    ends = [0] * degree
    for members in blocks:
        for j, v in enumerate(members):
            for d in range(order_degree[v, order_ - 2]):
                ends[d] = max(ends[d], j + 1)
    return tuple(ends)


def _state_mask(
    cards: Sequence[int], row_of_var: np.ndarray, num_rows: int, max_card: int
) -> np.ndarray:
    """Valid states of every row.

    Returns
    -------
    float32[R, K]
        0 for the states of each row's variable, ``-inf`` for padding states;
        padding rows allow state 0 only.
    """
    state_mask = np.full((num_rows, max_card), -np.inf, np.float32)
    state_mask[:, 0] = 0.0
    for v, card in enumerate(cards):
        state_mask[row_of_var[v], :card] = 0.0
    return state_mask


def compile_plan(
    variables: Sequence[Variable], factors: Sequence[Factor]
) -> tuple[Plan, tuple[tuple[int, ...], ...]]:
    """Compile variables and factors into a :class:`Plan` (host-side, NumPy).

    Parameters
    ----------
    variables : sequence of Variable
        The variables of a validated graph.
    factors : sequence of Factor
        Its factors, validated against the variables.

    Returns
    -------
    plan : Plan
        The compiled description.
    plan_order : tuple of tuple of int
        Per factor group, the positions in ``factors`` of its members.

    Raises
    ------
    ValueError
        If the cells do not fit the ``int32`` wiring or the padded tables do not
        fit in memory.
    """
    n = len(variables)
    cards = tuple(v.cardinality for v in variables)
    k = max(cards)
    group_shapes, plan_order = _group_factors(factors)
    order = [pos for members in plan_order for pos in members]
    factor_vars, factor_strides, factor_offset = _factor_wiring(factors, order)
    zero_cell = int(factor_offset[-1])
    var_factors, neighbors = _adjacency(n, factors, order)
    order_degree = _order_degrees(n, factors)
    blocks = _color_blocks(dsatur_coloring(neighbors), order_degree)
    color_size, row_of_var, var_of_row = _row_layout(blocks, n)
    num_rows = len(blocks) * color_size
    incidences = _oriented_incidences(n, factors, order, factor_offset)

    degrees = {o: max(len(slots) for slots in incidences[o]) for o in (1, 2, 3)}
    degrees[1] = max(degrees[1], 1)  # the sampler always reads a unary slot
    check_fits_in_memory(
        f"the graph's compiled sampler tables ({num_rows} rows, incidence slots "
        f"{degrees[1]} unary x K, {degrees[2]} pair x K^2, {degrees[3]} triple x "
        f"K^3, K = {k}: the largest cardinality pads every table)",
        plan_bytes(num_rows, k, degrees),
    )
    padded = {
        o: _padded_incidences(
            incidences[o], o, degrees[o], row_of_var, num_rows, k, zero_cell
        )
        for o in (1, 2, 3)
    }

    cat_vars = tuple(i for i, v in enumerate(variables) if not v.is_continuous)
    cont_vars = tuple(i for i, v in enumerate(variables) if v.is_continuous)
    plan = Plan(
        group_shapes=group_shapes,
        group_sizes=tuple(len(m) for m in plan_order),
        cards=cards,
        max_card=k,
        cat_vars=cat_vars,
        cont_vars=cont_vars,
        cont_low=tuple(float(variables[i].low) for i in cont_vars),
        cont_high=tuple(float(variables[i].high) for i in cont_vars),
        num_colors=len(blocks),
        color_size=color_size,
        pair_degree=degrees[2],
        triple_degree=degrees[3],
        unary_degree=degrees[1],
        pair_prefix=_slot_prefix(blocks, order_degree, 2, degrees[2]),
        triple_prefix=_slot_prefix(blocks, order_degree, 3, degrees[3]),
        factor_vars=jnp.asarray(factor_vars),
        factor_strides=jnp.asarray(factor_strides),
        factor_offset=jnp.asarray(factor_offset),
        var_factors=jnp.asarray(var_factors),
        row_of_var=jnp.asarray(row_of_var),
        var_of_row=jnp.asarray(var_of_row),
        unary_cells=jnp.asarray(padded[1][1]),
        pair_rows=jnp.asarray(padded[2][0][..., 0]),
        pair_cells=jnp.asarray(padded[2][1]),
        triple_rows=jnp.asarray(padded[3][0]),
        triple_cells=jnp.asarray(padded[3][1]),
        state_mask=jnp.asarray(_state_mask(cards, row_of_var, num_rows, k)),
    )
    return plan, plan_order
