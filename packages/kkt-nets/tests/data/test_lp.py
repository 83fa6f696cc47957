import numpy as np
import pytest
import scipy.sparse as sp

from kkt_nets.data.lp import LP, kkt_residuals, scale, standardize
from kkt_nets.data.solve import solve

# min -x0 - x1  s.t.  x0 + 2 x1 <= 4,  3 x0 + x1 <= 6,  x >= 0: optimum (1.6, 1.2),
# duals 0.4 and 0.2 on the two rows (and 0 on the bounds), value -2.8
TOY = standardize(
    np.array([-1.0, -1.0]),
    A_ub=[[1.0, 2.0], [3.0, 1.0]],
    b_ub=[4, 6],
    bounds_as_rows=True,
)
TOY_X = np.array([1.6, 1.2])
TOY_LAM = np.array([0.4, 0.2, 0.0, 0.0])
# the same LP with x >= 0 on the columns: rows 0 and 1 only
TOY_COLUMNS = standardize(
    np.array([-1.0, -1.0]), A_ub=[[1.0, 2.0], [3.0, 1.0]], b_ub=[4, 6]
)


def test_standardize_maps_every_row_and_bound_kind_literally():
    lp = standardize(
        np.array([1.0, 2.0]),
        A_ub=[[1.0, 1.0]],
        b_ub=[3.0],
        A_ge=[[2.0, -1.0]],
        b_ge=[1.0],
        A_eq=[[1.0, 3.0]],
        b_eq=[2.0],
        lb=[0.0, -np.inf],
        ub=[5.0, np.inf],
        name="toy",
        bounds_as_rows=True,
    )
    expected_A = [[1, 1], [-2, 1], [1, 3], [-1, -3], [1, 0], [-1, 0]]
    np.testing.assert_array_equal(lp.A, expected_A)
    np.testing.assert_array_equal(lp.b, [3, -1, 2, -2, 5, 0])
    assert lp.row_kind == ("ub", "ge", "eq+", "eq-", "upper", "lower")
    assert lp.name == "toy" and lp.obj_scale == 1.0
    np.testing.assert_array_equal(lp.row_scale, np.ones(6))
    assert np.isinf(lp.lb).all() and np.isinf(lp.ub).all()
    columns = standardize(
        np.array([1.0, 2.0]),
        A_ub=[[1.0, 1.0]],
        b_ub=[3.0],
        A_ge=[[2.0, -1.0]],
        b_ge=[1.0],
        A_eq=[[1.0, 3.0]],
        b_eq=[2.0],
        lb=[0.0, -np.inf],
        ub=[5.0, np.inf],
    )
    np.testing.assert_array_equal(columns.A, expected_A[:4])
    np.testing.assert_array_equal(columns.lb, [0.0, -np.inf])
    np.testing.assert_array_equal(columns.ub, [5.0, np.inf])
    assert columns.row_kind == ("ub", "ge", "eq+", "eq-")


def test_sparse_and_dense_input_give_the_same_lp():
    A = np.array([[1.0, 0.0, 2.0], [0.0, 0.0, -1.0]])
    dense = scale(
        standardize(
            np.ones(3), A_ub=A, b_ub=[4.0, -1.0], A_eq=A[:1], b_eq=[1.0], ub=3.0
        )
    )
    sparse = scale(
        standardize(
            np.ones(3),
            A_ub=sp.csr_array(A),
            b_ub=[4.0, -1.0],
            A_eq=sp.coo_matrix(A[:1]),
            b_eq=[1.0],
            ub=3.0,
        )
    )
    assert sp.issparse(sparse.A) and not sp.issparse(dense.A)
    np.testing.assert_allclose(sparse.A.toarray(), dense.A)
    np.testing.assert_allclose(sparse.b, dense.b)
    np.testing.assert_allclose(sparse.row_scale, dense.row_scale)
    np.testing.assert_allclose(sparse.dense_A(), dense.A)
    x = np.array([0.5, 1.0, 1.5])
    assert sparse.max_violation(x) == dense.max_violation(x)
    assert sparse.dual_bound(np.ones(4)) == pytest.approx(dense.dual_bound(np.ones(4)))


def test_dense_a_refuses_sizes_that_cannot_fit(monkeypatch):
    from kkt_nets.data import lp as lp_module

    monkeypatch.setattr(lp_module, "DENSE_LIMIT", 10)
    big = standardize(np.ones(4), A_ub=sp.identity(4, format="csr"), b_ub=np.ones(4))
    with pytest.raises(ValueError, match=r"4 x 4: a dense A would need"):
        big.dense_A()


def test_dual_bound_is_the_lagrangian_minimum_over_the_box():
    # r = c + A^T lam = (-1 + 0.4 + 0.6, -1 + 0.8 + 0.2) = (0, 0): g = -b^T lam
    assert TOY_COLUMNS.dual_bound([0.4, 0.2]) == pytest.approx(-2.8)
    # lam = 0: r = c = (-1, -1) pushes x to +inf: no bound without ub
    assert TOY_COLUMNS.dual_bound([0.0, 0.0]) == -np.inf
    boxed = standardize(
        np.array([-1.0, -1.0]), A_ub=[[1.0, 2.0], [3.0, 1.0]], b_ub=[4, 6], ub=2.0
    )
    # lam = 0 in the box [0, 2]^2: min -x0 - x1 = -4
    assert boxed.dual_bound([0.0, 0.0]) == pytest.approx(-4.0)
    # lam = (1, 0): r = (0, 1), g = -4 + 0 * 0 + 1 * 0 = -4; negative lam projected
    assert boxed.dual_bound([1.0, -5.0]) == pytest.approx(-4.0)
    lam_lb, lam_ub = boxed.bound_duals([0.0, 0.0])
    np.testing.assert_array_equal(lam_lb, [0.0, 0.0])
    np.testing.assert_array_equal(lam_ub, [1.0, 1.0])
    # the spec's form has free x: no finite bound unless stationarity is exact
    assert TOY.dual_bound(TOY_LAM) == pytest.approx(-2.8)
    assert TOY.dual_bound(TOY_LAM + 0.01) == -np.inf


def test_standardize_default_bounds_are_nonnegativity():
    lp = standardize(np.ones(3), A_ub=np.ones((1, 3)), b_ub=[1.0], bounds_as_rows=True)
    np.testing.assert_array_equal(lp.A[1:], -np.eye(3))
    np.testing.assert_array_equal(lp.b[1:], np.zeros(3))
    columns = standardize(np.ones(3), A_ub=np.ones((1, 3)), b_ub=[1.0])
    assert columns.m == 1
    np.testing.assert_array_equal(columns.lb, np.zeros(3))
    np.testing.assert_array_equal(columns.ub, np.full(3, np.inf))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"A_ub": [[1.0, 1.0]]}, "A_ub and b_ub"),
        ({"A_ge": [[1.0]], "b_ge": [1.0]}, "A_ge must be"),
        ({"lb": 2.0, "ub": 1.0}, "lb must not exceed ub"),
        ({"lb": None}, "no constraints"),
        ({"A_ub": [[1.0, np.nan]], "b_ub": [1.0]}, "A_ub holds non-finite"),
        ({"A_ub": [[1.0, 1.0]], "b_ub": [np.inf]}, "b_ub holds non-finite"),
        ({"A_ub": [[1.0, 1.0]], "b_ub": [1.0], "lb": [0.0, np.nan]}, "lb holds NaN"),
        ({"A_ub": [[1.0, 1.0]], "b_ub": [1.0], "lb": [0.0, 0.0, 0.0]}, "lb must be"),
    ],
)
def test_standardize_rejects_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        standardize(np.ones(2), **kwargs)
    with pytest.raises(ValueError, match="c holds non-finite"):
        standardize(np.array([1.0, np.inf]), A_ub=[[1.0, 1.0]], b_ub=[1.0])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((np.ones(2), np.ones(1), np.ones(1)), "A must be"),
        ((np.ones((2, 2)), np.ones(3), np.ones(2)), "b must have shape"),
        ((np.ones((2, 2)), np.ones(2), np.ones(3)), "c must have shape"),
        ((np.full((1, 1), np.nan), np.ones(1), np.ones(1)), "A holds non-finite"),
    ],
)
def test_lp_validates_its_arrays(args, message):
    with pytest.raises(ValueError, match=message):
        LP(*args)


def test_kkt_residuals_are_zero_at_the_known_optimum_and_literal_elsewhere():
    assert max(kkt_residuals(TOY, TOY_X, TOY_LAM).values()) < 1e-12
    # x = (2, 1): slack (0, 1, -2, -1); lam = (1, 0, 0, -0.5)
    r = kkt_residuals(TOY, np.array([2.0, 1.0]), np.array([1.0, 0.0, 0.0, -0.5]))
    assert r["primal"] == pytest.approx(1.0)
    assert r["dual"] == pytest.approx(0.5)
    # c + A^T lam = (-1 + 1, -1 + 2 + 0.5) = (0, 1.5)
    assert r["stationarity"] == pytest.approx(1.5)
    assert r["complementary_slackness"] == pytest.approx(0.5)
    # c^T x + b^T lam = -3 + 4 = 1
    assert r["duality_gap"] == pytest.approx(1.0)


def test_kkt_residuals_complete_the_bound_duals_on_columns():
    assert max(kkt_residuals(TOY_COLUMNS, TOY_X, [0.4, 0.2]).values()) < 1e-12
    # lam = (0.5, 0): r = (-0.5, 0) wants x0 -> +inf (no ub): unabsorbed 0.5
    r = kkt_residuals(TOY_COLUMNS, np.array([-1.0, 1.0]), np.array([0.5, 0.0]))
    assert r["stationarity"] == pytest.approx(0.5)
    assert r["primal"] == pytest.approx(1.0)  # x0 = -1 < lb = 0
    # lam = (1, 0): r = (0, 1) absorbed by lambda_lb = (0, 1) at x1 = 1: cs 1 * 1
    r = kkt_residuals(TOY_COLUMNS, np.array([0.0, 1.0]), np.array([1.0, 0.0]))
    assert r["stationarity"] == 0.0
    assert r["complementary_slackness"] == pytest.approx(2.0)  # row 0: 1 * (2 - 4)
    # c^T x - g(lam) = -1 - (-4 + 0) = 3
    assert r["duality_gap"] == pytest.approx(3.0)


def test_scale_normalizes_rows_and_objective_and_keeps_the_factors():
    rng = np.random.default_rng(0)
    lp = standardize(
        rng.normal(size=4) * 50, A_ub=rng.normal(size=(3, 4)) * 20, b_ub=np.ones(3)
    )
    scaled = scale(lp)
    row_max = np.maximum(np.abs(scaled.A).max(axis=1), np.abs(scaled.b))
    np.testing.assert_allclose(row_max, 1.0)
    assert np.abs(scaled.c).max() == pytest.approx(1.0)
    np.testing.assert_allclose(scaled.A / scaled.row_scale[:, None], lp.A)
    np.testing.assert_allclose(scaled.c / scaled.obj_scale, lp.c)
    twice = scale(scaled)
    np.testing.assert_allclose(twice.A, scaled.A)
    np.testing.assert_allclose(twice.row_scale, scaled.row_scale)


def test_scaled_solution_maps_back_to_the_original_duals_and_objective():
    lp = standardize(
        np.array([-3.0, -5.0]),
        A_ub=[[10.0, 0.0], [0.0, 200.0], [3.0, 2.0]],
        b_ub=[40.0, 1200.0, 18.0],
    )
    original, scaled_lp = solve(lp), scale(lp)
    scaled = solve(scaled_lp)
    np.testing.assert_allclose(scaled.x, original.x, atol=1e-9)
    np.testing.assert_allclose(
        scaled_lp.unscale_dual(scaled.lam), original.lam, atol=1e-9
    )
    assert scaled_lp.objective(scaled.x) == pytest.approx(original.z)
    # the textbook Wyndor problem: optimum (2, 6), value -36
    np.testing.assert_allclose(original.x, [2.0, 6.0], atol=1e-9)
    assert original.z == pytest.approx(-36.0)


def test_max_violation_is_in_original_row_units():
    scaled = scale(TOY)
    x = np.array([4.0, 0.0])  # row 0: 4 <= 4; row 1: 12 <= 6 violated by 6
    assert scaled.max_violation(x) == pytest.approx(6.0)
    assert TOY.max_violation(TOY_X) == 0.0


def test_bounds_to_rows_gives_the_spec_form_and_its_duals():
    from kkt_nets.data.lp import bounds_to_rows

    boxed = standardize(
        np.array([-1.0, -1.0]),
        A_ub=[[1.0, 2.0], [3.0, 1.0]],
        b_ub=[4, 6],
        ub=[1.0, 5.0],
    )
    rows, lam_rows = bounds_to_rows(boxed, [0.0, 0.5])
    direct = standardize(
        np.array([-1.0, -1.0]),
        A_ub=[[1.0, 2.0], [3.0, 1.0]],
        b_ub=[4, 6],
        ub=[1.0, 5.0],
        bounds_as_rows=True,
    )
    np.testing.assert_array_equal(rows.A, direct.A)
    np.testing.assert_array_equal(rows.b, direct.b)
    assert (
        rows.row_kind
        == direct.row_kind
        == ("ub",) * 2 + ("upper",) * 2 + ("lower",) * 2
    )
    # r = c + A^T (0, 0.5) = (0.5, -0.5): lambda_lb = (0.5, 0), lambda_ub = (0, 0.5)
    np.testing.assert_allclose(lam_rows, [0.0, 0.5, 0.0, 0.5, 0.5, 0.0])
    # stationarity of the spec's form holds with the completed duals
    np.testing.assert_allclose(rows.c + rows.A.T @ lam_rows, 0.0, atol=1e-15)
