import numpy as np
import pytest

from kkt_nets.data.lp import LP, kkt_residuals, scale, standardize
from kkt_nets.data.solve import solve

# min -x0 - x1  s.t.  x0 + 2 x1 <= 4,  3 x0 + x1 <= 6,  x >= 0: optimum (1.6, 1.2),
# duals 0.4 and 0.2 on the two rows (and 0 on the bounds), value -2.8
TOY = standardize(np.array([-1.0, -1.0]), A_ub=[[1.0, 2.0], [3.0, 1.0]], b_ub=[4, 6])
TOY_X = np.array([1.6, 1.2])
TOY_LAM = np.array([0.4, 0.2, 0.0, 0.0])


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
    )
    expected_A = [[1, 1], [-2, 1], [1, 3], [-1, -3], [1, 0], [-1, 0]]
    np.testing.assert_array_equal(lp.A, expected_A)
    np.testing.assert_array_equal(lp.b, [3, -1, 2, -2, 5, 0])
    assert lp.row_kind == ("ub", "ge", "eq+", "eq-", "upper", "lower")
    assert lp.name == "toy" and lp.obj_scale == 1.0
    np.testing.assert_array_equal(lp.row_scale, np.ones(6))


def test_standardize_default_bounds_are_nonnegativity_rows():
    lp = standardize(np.ones(3), A_ub=np.ones((1, 3)), b_ub=[1.0])
    np.testing.assert_array_equal(lp.A[1:], -np.eye(3))
    np.testing.assert_array_equal(lp.b[1:], np.zeros(3))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"A_ub": [[1.0, 1.0]]}, "A_ub and b_ub"),
        ({"A_ge": [[1.0]], "b_ge": [1.0]}, "A_ge must be"),
        ({"lb": 2.0, "ub": 1.0}, "lb must not exceed ub"),
        ({"lb": None}, "no constraints"),
    ],
)
def test_standardize_rejects_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        standardize(np.ones(2), **kwargs)


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
