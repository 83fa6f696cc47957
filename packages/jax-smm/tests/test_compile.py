"""The compilation steps against arrays worked out by hand for a tiny graph.

The graph (``tiny``): ``x0`` categorical with 2 states, ``x1`` categorical with
3 states, ``x2`` continuous on ``[0, 10]`` with 2 bins, and, in this order,

* factor 10 over ``(x0, x1)``, shape ``(2, 3)``, cells 0-5;
* factor 11 over ``(x1,)``, shape ``(3,)``;
* factor 12 over ``(x2, x1)``, shape ``(2, 3)``.

Factors 10 and 12 share a shape, so they form the first group and factor 11 the
second: the plan order is 10, 12, 11 (graph positions 0, 2, 1), with flat cells
0-5, 6-11 and 12-14, and cell 15 the appended zero used for padding. DSATUR
colors ``x1`` (two neighbors) first with color 0, then ``x0`` and ``x2`` with
color 1. Color blocks hold 2 rows: row 0 is ``x1``, row 1 padding, rows 2 and 3
are ``x0`` and ``x2``.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax_smm import Factor, FactorGraph, Variable
from jax_smm.compile import (
    _adjacency,
    _color_blocks,
    _factor_wiring,
    _group_factors,
    _order_degrees,
    _oriented_incidences,
    _padded_incidences,
    _row_layout,
    _slot_prefix,
    _state_mask,
    compile_plan,
    dsatur_coloring,
    flatten_theta,
    plan_bytes,
    unflatten_theta,
)

Z = 15  # the zero cell: one past the last real cell
ORDER = [0, 2, 1]  # graph positions in plan order


@pytest.fixture
def tiny():
    variables = [
        Variable.categorical("x0", 2),
        Variable.categorical("x1", 3),
        Variable.continuous("x2", 0.0, 10.0, 2),
    ]
    factors = [
        Factor(10, (0, 1), np.zeros((2, 3))),
        Factor(11, (1,), np.zeros(3)),
        Factor(12, (2, 1), np.zeros((2, 3))),
    ]
    return variables, factors


def test_group_factors(tiny):
    _, factors = tiny
    shapes, plan_order = _group_factors(factors)
    assert shapes == ((2, 3), (3,))
    assert plan_order == ((0, 2), (1,))


def test_factor_wiring(tiny):
    _, factors = tiny
    factor_vars, factor_strides, factor_offset = _factor_wiring(factors, ORDER)
    np.testing.assert_array_equal(
        factor_vars, [[0, 1, 0], [2, 1, 0], [1, 0, 0], [0, 0, 0]]
    )
    np.testing.assert_array_equal(
        factor_strides, [[3, 1, 0], [3, 1, 0], [1, 0, 0], [0, 0, 0]]
    )
    np.testing.assert_array_equal(factor_offset, [0, 6, 12, Z])
    assert factor_vars.dtype == factor_offset.dtype == np.int32


def test_adjacency(tiny):
    _, factors = tiny
    var_factors, neighbors = _adjacency(3, factors, ORDER)
    # plan indices: 0 = factor 10, 1 = factor 12, 2 = factor 11, 3 = padding
    np.testing.assert_array_equal(var_factors, [[0, 3, 3], [0, 1, 2], [1, 3, 3]])
    assert neighbors == [{1}, {0, 2}, {1}]


def test_order_degrees(tiny):
    _, factors = tiny
    np.testing.assert_array_equal(_order_degrees(3, factors), [[1, 0], [2, 0], [1, 0]])


def test_coloring_and_row_layout(tiny):
    colors = dsatur_coloring([{1}, {0, 2}, {1}])
    assert colors == [1, 0, 1]
    blocks = _color_blocks(colors, np.array([[1, 0], [2, 0], [1, 0]]))
    assert blocks == ((1,), (0, 2))
    color_size, row_of_var, var_of_row = _row_layout(blocks, 3)
    assert color_size == 2
    np.testing.assert_array_equal(row_of_var, [2, 0, 3])
    np.testing.assert_array_equal(var_of_row, [1, 3, 0, 2])  # 3 = padding row


def test_color_blocks_put_high_degree_rows_first():
    # one color; variable 2 has the most incidences, 0 and 3 tie on the total
    # but 3 has more pairs, 1 has none
    degrees = np.array([[0, 1], [0, 0], [2, 1], [1, 0]])
    assert _color_blocks([0, 0, 0, 0], degrees) == ((2, 3, 0, 1),)


def test_oriented_incidences(tiny):
    _, factors = tiny
    incidences = _oriented_incidences(3, factors, ORDER, np.array([0, 6, 12, Z]))
    assert incidences[3] == [[], [], []]
    assert [len(slots) for slots in incidences[1]] == [0, 1, 0]
    ((others, cells),) = incidences[1][1]
    assert others == ()
    np.testing.assert_array_equal(cells, [12, 13, 14])
    expected_pairs = [
        [((1,), [[0, 1, 2], [3, 4, 5]])],
        [((0,), [[0, 3], [1, 4], [2, 5]]), ((2,), [[6, 9], [7, 10], [8, 11]])],
        [((1,), [[6, 7, 8], [9, 10, 11]])],
    ]
    for got, want in zip(incidences[2], expected_pairs, strict=True):
        assert [others for others, _ in got] == [others for others, _ in want]
        for (_, cells), (_, table) in zip(got, want, strict=True):
            np.testing.assert_array_equal(cells, table)


def test_oriented_triple_puts_own_axis_first():
    factor = Factor(0, (0, 1, 2), np.zeros((2, 2, 3)))
    incidences = _oriented_incidences(3, [factor], [0], np.array([0, 12]))
    ((others, cells),) = incidences[3][1]
    assert others == (0, 2)
    # cell [x1, x0, x2] = 6 x0 + 3 x1 + x2
    np.testing.assert_array_equal(
        cells, [[[0, 1, 2], [6, 7, 8]], [[3, 4, 5], [9, 10, 11]]]
    )


def test_padded_incidences(tiny):
    _, factors = tiny
    incidences = _oriented_incidences(3, factors, ORDER, np.array([0, 6, 12, Z]))
    row_of_var = np.array([2, 0, 3])
    rows, cells = _padded_incidences(incidences[1], 1, 1, row_of_var, 4, 3, Z)
    assert rows.shape == (4, 1, 1)
    np.testing.assert_array_equal(
        cells, [[[12, 13, 14]], [[Z, Z, Z]], [[Z, Z, Z]], [[Z, Z, Z]]]
    )
    rows, cells = _padded_incidences(incidences[2], 2, 2, row_of_var, 4, 3, Z)
    np.testing.assert_array_equal(rows[..., 0], [[2, 3], [0, 0], [0, 0], [0, 0]])
    padding = [[Z, Z, Z]] * 3
    np.testing.assert_array_equal(
        cells,
        [
            [[[0, 3, Z], [1, 4, Z], [2, 5, Z]], [[6, 9, Z], [7, 10, Z], [8, 11, Z]]],
            [padding, padding],
            [[[0, 1, 2], [3, 4, 5], [Z, Z, Z]], padding],
            [[[6, 7, 8], [9, 10, 11], [Z, Z, Z]], padding],
        ],
    )
    rows, cells = _padded_incidences(incidences[3], 3, 0, row_of_var, 4, 3, Z)
    assert rows.shape == (4, 0, 2)
    assert cells.shape == (4, 0, 3, 3, 3)


def test_slot_prefix_and_state_mask():
    blocks = ((1,), (0, 2))
    degrees = np.array([[1, 0], [2, 0], [1, 0]])
    assert _slot_prefix(blocks, degrees, 2, 2) == (2, 1)
    assert _slot_prefix(blocks, degrees, 3, 0) == ()
    inf = -np.inf
    np.testing.assert_array_equal(
        _state_mask((2, 3, 2), np.array([2, 0, 3]), 4, 3),
        [[0, 0, 0], [0, inf, inf], [0, 0, inf], [0, 0, inf]],
    )


def test_plan_bytes():
    # per row: 1 x (3 + 1) + 2 x (9 + 2) + 3 = 29 cells, int32 and float32
    assert plan_bytes(4, 3, {1: 1, 2: 2, 3: 0}) == 2 * 4 * 4 * 29


def test_compile_plan(tiny):
    variables, factors = tiny
    plan, plan_order = compile_plan(variables, factors)
    assert plan_order == ((0, 2), (1,))
    assert plan.group_shapes == ((2, 3), (3,))
    assert plan.group_sizes == (2, 1)
    assert (plan.cards, plan.max_card) == ((2, 3, 2), 3)
    assert (plan.cat_vars, plan.cont_vars) == ((0, 1), (2,))
    assert (plan.cont_low, plan.cont_high) == ((0.0,), (10.0,))
    assert (plan.num_colors, plan.color_size, plan.num_rows) == (2, 2, 4)
    assert (plan.unary_degree, plan.pair_degree, plan.triple_degree) == (1, 2, 0)
    assert (plan.pair_prefix, plan.triple_prefix) == ((2, 1), ())
    assert (plan.num_vars, plan.num_factors, plan.num_params) == (3, 3, 15)
    np.testing.assert_array_equal(plan.factor_offset, [0, 6, 12, Z])
    np.testing.assert_array_equal(plan.var_factors, [[0, 3, 3], [0, 1, 2], [1, 3, 3]])
    np.testing.assert_array_equal(plan.row_of_var, [2, 0, 3])
    np.testing.assert_array_equal(plan.var_of_row, [1, 3, 0, 2])
    np.testing.assert_array_equal(plan.pair_rows, [[2, 3], [0, 0], [0, 0], [0, 0]])
    assert plan.triple_rows.shape == (4, 0, 2)
    graph = FactorGraph(variables, factors)
    assert [graph.cell_range(i) for i in (10, 11, 12)] == [(0, 6), (12, 15), (6, 12)]


def test_groups_stack_by_shape_and_roundtrip(mixed_graph):
    g = mixed_graph
    shapes = g.plan.group_shapes
    assert len(set(shapes)) == len(shapes)
    for shape, size, group in zip(shapes, g.plan.group_sizes, g.theta_groups):
        assert group.shape == (size, *shape)
    flat = flatten_theta(g.theta_groups)
    assert flat.shape == (g.plan.num_params,)
    for a, b in zip(unflatten_theta(g.plan, flat), g.theta_groups, strict=False):
        np.testing.assert_array_equal(a, b)
    for f in g.factors:
        np.testing.assert_array_equal(g.thetas[f.id], f.theta)
        start, stop = g.cell_range(f.id)
        np.testing.assert_array_equal(flat[start:stop], np.ravel(f.theta))


def test_coloring_separates_factor_scopes(mixed_graph):
    g = mixed_graph
    color = np.asarray(g.plan.row_of_var) // g.plan.color_size
    for f in g.factors:
        assert len({int(color[v]) for v in f.var_ids}) == f.order


def test_dsatur_literal_graphs():
    # An even cycle is 2-colorable, an odd cycle needs 3, a 4-clique 4.
    def cycle(n):
        return [{(i - 1) % n, (i + 1) % n} for i in range(n)]

    assert max(dsatur_coloring(cycle(8))) + 1 == 2
    assert max(dsatur_coloring(cycle(7))) + 1 == 3
    clique = [set(range(4)) - {i} for i in range(4)]
    assert sorted(dsatur_coloring(clique)) == [0, 1, 2, 3]


def test_grid_gets_two_colors(make_graph):
    side = 6
    scopes = [
        (r * side + c, r * side + (c + 1) % side)
        for r in range(side)
        for c in range(side)
    ]
    scopes += [
        (r * side + c, ((r + 1) % side) * side + c)
        for r in range(side)
        for c in range(side)
    ]
    g = make_graph([2] * side * side, scopes)
    assert g.plan.num_colors == 2
    assert g.plan.color_size == side * side // 2


def test_equal_plans_do_not_retrace(mixed_graph):
    traces = []

    @jax.jit
    def f(plan, x):
        traces.append(1)
        return jnp.sum(plan.factor_offset) + x

    f(mixed_graph.plan, 1.0)
    again = FactorGraph(mixed_graph.variables, mixed_graph.factors)
    f(again.plan, 2.0)
    assert len(traces) == 1


def test_rows_beyond_a_slot_prefix_have_no_incidence(make_graph):
    """The sampler skips rows past ``prefix[d]`` in slot ``d``: they must only
    hold padding (the zero cell), and every real incidence must be kept."""
    scopes = [(v,) for v in range(9)] + [
        (0, 1),
        (0, 2),
        (0, 3),
        (0, 4),
        (5, 6),
        (1, 2, 7),
        (3, 4, 8),
        (5, 7, 8),
    ]
    graph = make_graph([2, 3, 2, 4, 2, 3, 2, 2, 3], scopes, seed=0)
    plan = graph.plan
    zero = plan.num_params
    size = plan.color_size
    for cells, prefix in (
        (np.asarray(plan.pair_cells), plan.pair_prefix),
        (np.asarray(plan.triple_cells), plan.triple_prefix),
    ):
        assert len(prefix) == cells.shape[1]
        real = (cells != zero).reshape((*cells.shape[:2], -1)).any(axis=2)
        assert real.sum() > 0
        for d, end in enumerate(prefix):
            local = np.arange(plan.num_rows) % size
            assert not real[local >= end, d].any()
            assert real[local == end - 1, d].any()
    assert sum(plan.pair_prefix) < plan.pair_degree * size
