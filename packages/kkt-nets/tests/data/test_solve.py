import numpy as np
import pytest
from scipy.optimize import linprog

from kkt_nets.data.generators import GENERATORS, formulate
from kkt_nets.data.lp import kkt_residuals, scale, standardize
from kkt_nets.data.solve import LPError, Solution, solve

SMALL = {
    "set_cover": {"rows": 20, "cols": 30, "density": 0.1},
    "combinatorial_auction": {"items": 15, "bids": 30},
    "facility_location": {"customers": 8, "facilities": 4},
    "independent_set": {"nodes": 40, "affinity": 4},
    "random_lp": {"m": 20, "n": 30},
}


def test_toy_lp_duals_have_the_ax_le_b_sign():
    # min -x0 - x1  s.t.  x0 + 2 x1 <= 4,  3 x0 + x1 <= 6,  x >= 0
    rows = standardize(
        np.array([-1.0, -1.0]),
        A_ub=[[1.0, 2.0], [3.0, 1.0]],
        b_ub=[4, 6],
        bounds_as_rows=True,
    )
    columns = standardize(
        np.array([-1.0, -1.0]), A_ub=[[1.0, 2.0], [3.0, 1.0]], b_ub=[4, 6]
    )
    for lp, lam in ((rows, [0.4, 0.2, 0.0, 0.0]), (columns, [0.4, 0.2])):
        sol = solve(lp)
        assert isinstance(sol, Solution) and sol.status == "Optimal"
        np.testing.assert_allclose(sol.x, [1.6, 1.2], atol=1e-9)
        np.testing.assert_allclose(sol.lam, lam, atol=1e-9)
        assert sol.z == pytest.approx(-2.8)
        assert sol.solve_seconds > 0


@pytest.mark.parametrize("solver", ["simplex", "ipm", "pdlp"])
def test_every_highs_algorithm_finds_the_toy_optimum(solver):
    lp = standardize(np.array([-1.0, -1.0]), A_ub=[[1.0, 2.0], [3.0, 1.0]], b_ub=[4, 6])
    sol = solve(lp, solver=solver, tolerance=1e-6)
    np.testing.assert_allclose(sol.x, [1.6, 1.2], atol=1e-4)
    with pytest.raises(ValueError, match="solver must be one of"):
        solve(lp, solver="barrier")


def test_highs_prints_no_banner_on_stdout(capfd):
    import subprocess
    import sys

    code = (
        "import numpy as np; from kkt_nets.data.lp import standardize; "
        "from kkt_nets.data.solve import solve; "
        "solve(standardize(np.ones(1), A_ub=[[1.0]], b_ub=[1.0]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""


@pytest.mark.parametrize("bounds_as_rows", [False, True], ids=["columns", "rows"])
@pytest.mark.parametrize("family", sorted(GENERATORS))
@pytest.mark.parametrize("seed", [0, 1])
def test_highs_labels_satisfy_kkt_and_match_linprog_on_the_original(
    family, seed, bounds_as_rows
):
    problem = formulate(family, np.random.default_rng(seed), **SMALL[family])
    lp = scale(problem.standardize(bounds_as_rows))
    sol = solve(lp)
    assert sol.status == "Optimal"
    residuals = kkt_residuals(lp, sol.x, sol.lam)
    assert all(value < 1e-6 for value in residuals.values()), residuals
    if bounds_as_rows:  # strong duality in the A x <= b convention
        assert lp.c @ sol.x == pytest.approx(-(lp.b @ sol.lam), abs=1e-8)
        # x is free: unless r is exactly zero there is no finite certificate
        assert lp.dual_bound(sol.lam) in (-np.inf, pytest.approx(lp.objective(sol.x)))
    else:  # the Lagrangian bound of lambda* is the optimum
        z = lp.objective(sol.x)
        assert lp.dual_bound(sol.lam) == pytest.approx(z, rel=1e-8, abs=1e-8)
    assert sol.z == pytest.approx(lp.c @ sol.x)
    # independent check of standardize + scale: scipy on the natural formulation
    A_ub, b_ub = problem.A_ub, problem.b_ub
    if problem.A_ge is not None:
        A_ub = -problem.A_ge if A_ub is None else np.vstack([A_ub, -problem.A_ge])
        b_ub = -problem.b_ge if b_ub is None else np.concatenate([b_ub, -problem.b_ge])
    ref = linprog(
        problem.c,
        A_ub=A_ub,
        b_ub=b_ub,
        A_eq=problem.A_eq,
        b_eq=problem.b_eq,
        bounds=(problem.lb, problem.ub),
        method="highs",
    )
    assert ref.status == 0
    assert lp.objective(sol.x) == pytest.approx(ref.fun, rel=1e-7, abs=1e-7)


def test_infeasible_lp_raises_naming_the_lp_and_status():
    # x <= -1 with x >= 0
    lp = standardize(np.array([1.0]), A_ub=[[1.0]], b_ub=[-1.0], name="toy-infeasible")
    with pytest.raises(LPError, match=r"'toy-infeasible'.*HiGHS status 'Infeasible'"):
        solve(lp)


def test_unbounded_lp_raises_naming_the_lp_and_status():
    # min -x0 s.t. x0 - x1 <= 1, x >= 0: ray (1, 1)
    lp = standardize(np.array([-1.0, 0.0]), A_ub=[[1.0, -1.0]], b_ub=[1.0], name="ray")
    with pytest.raises(LPError, match=r"'ray'.*HiGHS status '.*[Uu]nbounded"):
        solve(lp)


def test_lp_error_is_a_value_error():
    assert issubclass(LPError, ValueError)
