import numpy as np
import pytest

from jax_smm import (
    LinearConstraint,
    Targets,
    connected_correlations,
    correlation_pearson,
    exact_marginals,
    exact_variable_marginals,
    max_moment_error,
    mean_moment_error,
)


def test_moment_errors_on_literal_tables(make_graph):
    g = make_graph([2, 2], [(0,), (0, 1)])
    targets = Targets(
        {0: np.array([0.5, 0.5]), 1: np.array([[0.25, 0.25], [0.25, 0.25]])},
        (LinearConstraint((0, 1), np.array([[0.0, 0.0], [0.0, 1.0]]), 0.3),),
    )
    model = {0: np.array([0.6, 0.4]), 1: np.array([[0.3, 0.3], [0.2, 0.2]])}
    # errors: 0.1, 0.1 | 0.05 x4 | E[W] = 0.2 vs 0.3 -> 0.1
    assert max_moment_error(g, targets, model) == pytest.approx(0.1)
    assert mean_moment_error(g, targets, model) == pytest.approx((0.2 + 0.2 + 0.1) / 7)


def test_connected_correlations_literal(make_graph):
    g = make_graph([2, 2], [(0,), (0, 1)])
    table = np.array([[0.4, 0.1], [0.2, 0.3]])
    got = connected_correlations(g, {0: np.array([0.5, 0.5]), 1: table})
    # f_0 = (0.5, 0.5), f_1 = (0.6, 0.4)
    want = table - np.array([[0.3, 0.2], [0.3, 0.2]])
    np.testing.assert_allclose(got, want.ravel())


def test_pearson_of_connected_correlations(make_graph):
    g = make_graph([2, 2, 2], [(0, 1), (1, 2)])
    target = {
        0: np.array([[0.4, 0.1], [0.2, 0.3]]),
        1: np.array([[0.3, 0.3], [0.1, 0.3]]),
    }
    model = {
        0: np.array([[0.35, 0.15], [0.2, 0.3]]),
        1: np.array([[0.3, 0.3], [0.2, 0.2]]),
    }
    # 2x2 connected correlations are (c, -c, -c, c) with c = f(0,0) - f_0(0) f_1(0)
    c_target = [0.4 - 0.5 * 0.6, 0.3 - 0.6 * 0.4]
    c_model = [0.35 - 0.5 * 0.55, 0.3 - 0.6 * 0.5]
    signs = np.array([1, -1, -1, 1])
    want = np.corrcoef(np.kron(c_model, signs), np.kron(c_target, signs))[0, 1]
    assert correlation_pearson(g, model, target) == pytest.approx(want)
    assert correlation_pearson(g, target, target) == pytest.approx(1.0)


def test_exact_variable_marginals_sum_factor_tables(mixed_graph):
    tables = exact_marginals(mixed_graph)
    singles = exact_variable_marginals(mixed_graph)
    for f in mixed_graph.factors:
        if f.order == 1:
            np.testing.assert_allclose(tables[f.id], singles[f.var_ids[0]], atol=1e-6)
    np.testing.assert_allclose(np.asarray(tables[5]).sum(1), singles[0], atol=1e-6)


def test_enumeration_limit(make_graph):
    g = make_graph([32] * 5, [(0,)])
    with pytest.raises(ValueError, match="exact enumeration is limited"):
        exact_marginals(g)
