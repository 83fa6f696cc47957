import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax_smm import Factor, FactorGraph, Variable
from jax_smm.graph import dsatur_coloring, flatten_theta, unflatten_theta


def test_variable_validation():
    with pytest.raises(ValueError, match="num_states"):
        Variable.categorical("a", 1)
    with pytest.raises(ValueError, match="low < high"):
        Variable.continuous("b", 2.0, 2.0, 4)
    with pytest.raises(ValueError, match="high must be a finite real number"):
        Variable.continuous("b", 0.0, float("inf"), 4)
    with pytest.raises(ValueError, match="num_bins"):
        Variable.continuous("c", 0.0, 1.0, 0)
    with pytest.raises(ValueError, match="kind"):
        Variable("d", kind="spline", num_states=3)
    assert Variable.continuous("e", 0, 1, 5).cardinality == 5


def test_factor_validation():
    with pytest.raises(ValueError, match="var_ids has repeats"):
        Factor(0, (1, 1), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="1 to 3"):
        Factor(0, (0, 1, 2, 3), np.zeros((2, 2, 2, 2)))
    with pytest.raises(ValueError, match="table_shape"):
        Factor(0, (0, 1), np.zeros((2, 3)), table_shape=(2, 2))
    with pytest.raises(ValueError, match="finite"):
        Factor(0, (0,), np.array([0.0, np.nan]))


def test_graph_validation():
    vs = [Variable.categorical("a", 2), Variable.categorical("b", 3)]
    with pytest.raises(ValueError, match="out of range"):
        FactorGraph(vs, [Factor(0, (0, 2), np.zeros((2, 2)))])
    with pytest.raises(ValueError, match="cardinalities"):
        FactorGraph(vs, [Factor(0, (0, 1), np.zeros((2, 2)))])
    with pytest.raises(ValueError, match="unique"):
        FactorGraph(vs, [Factor(0, (0,), np.zeros(2)), Factor(0, (1,), np.zeros(3))])


def test_adjacency_and_index_maps(mixed_graph):
    g = mixed_graph
    assert g.factor_to_vars[5] == (0, 1)
    assert g.var_to_factors[2] == [2, 6, 7, 9]
    assert g.var_index[2] == ("cont", 0)
    assert g.var_index[3] == ("cat", 2)
    assert (g.n_cat, g.n_cont) == (4, 1)


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


def test_with_theta_keeps_plan(mixed_graph):
    zeros = [jnp.zeros_like(t) for t in mixed_graph.theta_groups]
    g2 = mixed_graph.with_theta(zeros)
    assert g2.plan is mixed_graph.plan
    assert all(float(jnp.abs(f.theta).sum()) == 0 for f in g2.factors)
    assert float(jnp.abs(mixed_graph.factors[0].theta).sum()) > 0


def test_factor_over_and_orient_table(mixed_graph):
    from jax_smm.features import orient_table

    assert mixed_graph.factor_over((1, 0)).id == 5
    assert mixed_graph.factor_over((4, 0, 2)).id == 9
    assert mixed_graph.factor_over((0, 3)) is None
    table = np.arange(6).reshape(2, 3)  # axes (a, b)
    np.testing.assert_array_equal(orient_table(table, (7, 8), (8, 7)), table.T)


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
