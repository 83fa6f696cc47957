import jax.numpy as jnp
import numpy as np
import pytest

from jax_smm import Factor, FactorGraph, Variable


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
