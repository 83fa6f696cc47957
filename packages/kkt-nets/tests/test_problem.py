import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linprog

from kkt_nets.data.solve import solve as highs_solve
from kkt_nets.problem import Problem

# min -x0 - 2 x1 + 3  s.t.  x0 + x1 <= 4,  x0 - x1 >= -2 (as -x0 + x1 <= 2),
# x0 + 3 x1 = 6 ... written with both row kinds and an equality
C = np.array([-1.0, -2.0])
A_UB = np.array([[1.0, 1.0], [-1.0, 1.0]])
B_UB = np.array([4.0, 2.0])
A_EQ = np.array([[1.0, 3.0]])
B_EQ = np.array([6.0])


def test_from_arrays_to_lp_keeps_the_optimum_and_maps_duals_to_linprog_marginals():
    problem = Problem.from_arrays(C, A_UB, B_UB, A_EQ, B_EQ, bounds=(0, 3))
    lp = problem.to_lp()
    assert lp.row_kind == ("ub", "ub", "eq+", "eq-")
    np.testing.assert_array_equal(lp.lb, 0.0)
    np.testing.assert_array_equal(lp.ub, 3.0)
    label = highs_solve(lp)
    ref = linprog(C, A_UB, B_UB, A_EQ, B_EQ, bounds=(0, 3), method="highs")
    assert problem.objective(lp.objective(label.x)) == pytest.approx(ref.fun)
    duals = problem.row_duals(lp.unscale_dual(label.lam))
    np.testing.assert_allclose(duals[:2], ref.ineqlin.marginals, atol=1e-9)
    np.testing.assert_allclose(duals[2:], ref.eqlin.marginals, atol=1e-9)


def test_sparse_input_and_per_variable_bounds():
    dense = Problem.from_arrays(C, A_UB, B_UB, bounds=[(0, None), (None, 1.5)])
    sparse = Problem.from_arrays(
        C, sp.csr_array(A_UB), B_UB, bounds=[(0, None), (None, 1.5)]
    )
    np.testing.assert_array_equal(dense.A.toarray(), sparse.A.toarray())
    np.testing.assert_array_equal(sparse.lb, [0.0, -np.inf])
    np.testing.assert_array_equal(sparse.ub, [np.inf, 1.5])


def test_maximisation_offset_and_ranged_rows_from_an_mps_file(tmp_path):
    # max x0 + x1 + 10  s.t.  1 <= x0 + 2 x1 <= 4 (ranged),  x0 <= 3,  x >= 0
    problem = Problem(
        c=np.array([1.0, 1.0]),
        A=sp.csr_array(np.array([[1.0, 2.0], [1.0, 0.0]])),
        row_lower=np.array([1.0, -np.inf]),
        row_upper=np.array([4.0, 3.0]),
        lb=np.zeros(2),
        ub=np.full(2, np.inf),
        offset=10.0,
        maximize=True,
        name="ranged",
    )
    path = problem.write_mps(tmp_path / "ranged.mps")
    read = Problem.from_mps(path)
    assert read.maximize and read.offset == 10.0
    np.testing.assert_array_equal(read.A.toarray(), problem.A.toarray())
    np.testing.assert_array_equal(read.row_lower, problem.row_lower)
    np.testing.assert_array_equal(read.row_upper, problem.row_upper)
    lp = read.to_lp()
    assert lp.row_kind == ("ub", "ub", "ge")
    label = highs_solve(lp)
    # optimum x = (3, 0.5): 3.5 + 10
    assert read.objective(lp.objective(label.x)) == pytest.approx(13.5)
    # sensitivities by finite differences of the user's objective
    duals = read.row_duals(lp.unscale_dual(label.lam))
    for row, bump in ((0, "row_upper"), (1, "row_upper")):
        bounds = getattr(problem, bump).copy()
        bounds[row] += 1e-3
        moved = Problem(**{**_fields(problem), bump: bounds})
        moved_lp = moved.to_lp()
        z = moved.objective(moved_lp.objective(highs_solve(moved_lp).x))
        assert duals[row] == pytest.approx((z - 13.5) / 1e-3, abs=1e-6)


def _fields(problem: Problem) -> dict:
    keys = ("c", "A", "row_lower", "row_upper", "lb", "ub", "offset", "maximize")
    return {key: getattr(problem, key) for key in keys}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"c": [1.0, np.nan]}, "c holds non-finite"),
        ({"A_ub": [[1.0, np.inf], [1.0, 1.0]]}, "A_ub holds non-finite"),
        ({"b_ub": [np.nan, 1.0]}, "b_ub holds non-finite"),
        ({"b_ub": [1.0]}, "b_ub must have 2 entries"),
        ({"A_ub": [[1.0, 1.0, 1.0]]}, "A_ub must have 2 columns"),
        ({"bounds": (2.0, 1.0)}, r"lb > ub for variable 0"),
        ({"bounds": [(0, 1)] * 3}, "bounds must be one"),
        ({"bounds": (np.nan, 1.0)}, "bounds hold NaN"),
        ({"A_eq": [[1.0, 1.0]]}, "A_eq and b_eq must be given together"),
        ({"A_ub": None, "b_ub": None}, "the LP has no rows"),
    ],
)
def test_bad_arrays_are_refused_naming_the_argument(kwargs, message):
    arguments = {"c": C, "A_ub": A_UB, "b_ub": B_UB, **kwargs}
    with pytest.raises(ValueError, match=message):
        Problem.from_arrays(**arguments)


def test_bad_mps_files_are_named(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        Problem.from_mps(tmp_path / "none.mps")
    bad = tmp_path / "bad.mps"
    bad.write_text("garbage\n")
    with pytest.raises(ValueError, match=r"cannot read .*bad\.mps"):
        Problem.from_mps(bad)
