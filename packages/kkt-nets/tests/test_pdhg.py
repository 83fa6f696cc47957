import time

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from kkt_nets.data.generators import generate
from kkt_nets.data.lp import scale, standardize
from kkt_nets.data.solve import solve
from kkt_nets.duality import lagrangian_bound_terms
from kkt_nets.pdhg import STATUSES, PDHGResult, pdhg_solve

SMALL = {
    "set_cover": {"rows": 30, "cols": 30},
    "combinatorial_auction": {"items": 15, "bids": 30},
    "facility_location": {"customers": 6, "facilities": 3},
    "independent_set": {"nodes": 20, "affinity": 2},
    "random_lp": {"m": 10, "n": 10},
}
REPORT = {
    "set_cover": {"rows": 50, "cols": 50},
    "combinatorial_auction": {"items": 40, "bids": 80},
    "facility_location": {"customers": 10, "facilities": 5},
    "independent_set": {"nodes": 40, "affinity": 4},
}


def random_lp(rng, m, n, sparse=False, mixed=False, eq=0):
    """A feasible LP with a finite optimum (dual feasible by construction).

    ``mixed``: columns cycle through ``[0, inf)``, ``(-inf, 1]``, free and
    ``[0, 2]``; else ``[0, 1]``. ``eq`` equality rows through the interior.
    """
    A = rng.normal(size=(m, n))
    if sparse:
        A = A * (rng.random((m, n)) < 0.4)
    interior = rng.uniform(0.2, 0.8, n)
    lb, ub = np.zeros(n), np.ones(n)
    if mixed:
        kind = np.arange(n) % 4
        lb = np.where((kind == 1) | (kind == 2), -np.inf, 0.0)
        ub = np.select([kind == 0, kind == 2, kind == 3], [np.inf, np.inf, 2.0], 1.0)
    b = A @ interior + rng.uniform(0.1, 1.0, m)
    y = rng.uniform(0, 1, m) * (rng.random(m) < 0.5)
    r = rng.normal(size=n)  # reduced costs the bounds can absorb
    r = np.where(np.isfinite(lb) & np.isfinite(ub), r, np.abs(r))
    r = np.where(np.isfinite(lb), r, np.where(np.isfinite(ub), -r, 0.0))
    rows = {}
    if eq:
        A_eq = rng.normal(size=(eq, n))
        rows = {"A_eq": A_eq, "b_eq": A_eq @ interior}
    A_ub = sp.csr_array(A) if sparse else A
    return standardize(r - A.T @ y, A_ub=A_ub, b_ub=b, lb=lb, ub=ub, **rows)


def measures(lp, x, lam):
    """The three relative measures of PDHGResult, recomputed with NumPy."""
    r = torch.from_numpy(lp.c + lp.A.T @ lam)
    value, unabsorbed = lagrangian_bound_terms(
        r, torch.from_numpy(lp.lb), torch.from_numpy(lp.ub)
    )
    pobj, dobj = lp.c @ x, float(value.sum()) - lp.b @ lam
    return (
        abs(pobj - dobj) / (1 + abs(pobj) + abs(dobj)),
        np.linalg.norm(np.maximum(lp.A @ x - lp.b, 0)) / (1 + np.linalg.norm(lp.b)),
        float(unabsorbed.norm()) / (1 + np.linalg.norm(lp.c)),
    )


def close(objective, z, rtol=1e-4):
    return abs(objective - z) <= rtol * (1 + abs(z))


def family_batch(params, count, seed=0):
    return [
        scale(generate(family, np.random.default_rng(seed + i), **kwargs))
        for family, kwargs in params.items()
        for i in range(count)
    ]


@pytest.fixture(scope="module")
def random_batch():
    rng = np.random.default_rng(7)
    return [
        random_lp(rng, 8, 5),
        random_lp(rng, 15, 12, sparse=True),
        random_lp(rng, 10, 12, mixed=True),
        random_lp(rng, 6, 9, eq=2),
        random_lp(rng, 12, 16, sparse=True, mixed=True, eq=3),
    ]


@pytest.fixture(scope="module")
def families():
    lps = family_batch(SMALL, 2)
    return lps, [solve(lp) for lp in lps]


def test_random_batch_of_mixed_sizes_matches_highs(random_batch):
    tol = 1e-6
    results = pdhg_solve(random_batch, tol=tol)
    assert len(results) == len(random_batch)
    for lp, res in zip(random_batch, results):
        z = solve(lp).z
        assert isinstance(res, PDHGResult) and res.status == "optimal"
        assert res.x.shape == (lp.n,) and res.lam.shape == (lp.m,)
        assert close(res.objective, z), (res.objective, z)
        assert res.objective == pytest.approx(lp.c @ res.x, rel=1e-12, abs=1e-12)
        assert max(res.relative_gap, res.primal_residual, res.dual_residual) <= tol
        # the reported measures are those of the returned (x, lam)
        reported = (res.relative_gap, res.primal_residual, res.dual_residual)
        np.testing.assert_allclose(measures(lp, res.x, res.lam), reported, atol=1e-12)
        assert np.all(res.x >= lp.lb) and np.all(res.x <= lp.ub)
        assert np.all(res.lam >= 0) and 0 < res.iterations <= 100_000
        if np.isfinite(lp.lb).all() and np.isfinite(lp.ub).all():
            bound = lp.dual_bound(res.lam)
            assert bound <= z + 1e-6 and close(bound, z)
            assert bound == pytest.approx(res.dual_objective, abs=1e-9)


def test_generator_families_in_one_batch_match_highs(families):
    lps, solutions = families
    results = pdhg_solve(lps, tol=1e-5)
    for lp, sol, res in zip(lps, solutions, results):
        assert res.status == "optimal", lp.name
        assert close(res.objective, sol.z), (lp.name, res.objective, sol.z)
        bound = lp.dual_bound(res.lam) * lp.obj_scale  # dual_bound unscales
        assert bound <= sol.z + 1e-6 and close(bound, sol.z)


def test_warm_start_at_the_optimum_stops_at_once(families):
    lps, solutions = families
    results = pdhg_solve(lps, [s.x for s in solutions], [s.lam for s in solutions])
    assert [res.iterations for res in results] == [0] * len(lps)
    assert all(res.status == "optimal" for res in results)
    for lp, sol, res in zip(lps, solutions, results):
        np.testing.assert_allclose(res.x, np.clip(sol.x, lp.lb, lp.ub), atol=1e-12)


def test_warm_start_near_the_optimum_beats_cold(families):
    lps, solutions = families
    rng = np.random.default_rng(3)
    x0 = [s.x + 0.05 * rng.normal(size=s.x.size) for s in solutions]
    lam0 = [s.lam + 0.05 * np.abs(rng.normal(size=s.lam.size)) for s in solutions]
    cold = [res.iterations for res in pdhg_solve(lps)]
    warm = [res.iterations for res in pdhg_solve(lps, x0, lam0)]
    assert np.median(warm) < np.median(cold)


def test_batch_gives_the_same_results_as_each_lp_alone(random_batch, families):
    lps = random_batch + families[0][::3]
    batch = pdhg_solve(lps)
    for lp, together in zip(lps, batch):
        alone = pdhg_solve([lp])[0]
        assert together.iterations == alone.iterations
        assert together.status == alone.status
        np.testing.assert_allclose(together.x, alone.x, rtol=0, atol=1e-8)
        np.testing.assert_allclose(together.lam, alone.lam, rtol=0, atol=1e-8)
    again = pdhg_solve(lps)  # deterministic
    assert all(np.array_equal(a.x, b.x) for a, b in zip(batch, again))


def test_infeasible_and_unbounded_are_detected_next_to_a_feasible_lp(random_batch):
    infeasible = standardize(np.ones(2), A_ub=[[1.0, 1.0]], b_ub=[-1.0])
    contradictory = standardize(  # x <= -1 and x >= 1, x free
        np.ones(1), A_ub=[[1.0]], b_ub=[-1.0], A_ge=[[1.0]], b_ge=[1.0], lb=None
    )
    unbounded = standardize(np.array([-1.0, 0.0]), A_ub=[[1.0, -1.0]], b_ub=[1.0])
    feasible = random_batch[2]
    results = pdhg_solve([infeasible, feasible, contradictory, unbounded])
    statuses = [res.status for res in results]
    assert statuses == [
        "primal_infeasible",
        "optimal",
        "primal_infeasible",
        "dual_infeasible",
    ]
    assert close(results[1].objective, solve(feasible).z)


def test_limits_are_never_labelled_optimal(families):
    lps = families[0]
    for res in pdhg_solve(lps, max_iter=10):
        assert res.status == "iteration_limit" and res.iterations == 10
        assert np.all(res.lam >= 0)
    zero = pdhg_solve(lps[:2], max_iter=0)
    assert [(r.status, r.iterations) for r in zero] == [("iteration_limit", 0)] * 2
    late = pdhg_solve(lps[:2], time_limit=1e-9)
    assert {r.status for r in late} == {"time_limit"}
    assert set(STATUSES) >= {r.status for r in late}


def test_warm_starts_are_projected(random_batch):
    lp = random_batch[2]  # mixed bounds
    x0 = np.linspace(-5, 5, lp.n)
    lam0 = np.linspace(-1, 1, lp.m)
    res = pdhg_solve([lp], [x0], [lam0], max_iter=0)[0]
    np.testing.assert_allclose(res.x, np.clip(x0, lp.lb, lp.ub), rtol=1e-14)
    np.testing.assert_allclose(res.lam, np.maximum(lam0, 0), rtol=1e-14)
    mixed = pdhg_solve([lp, random_batch[0]], [x0, None], None, max_iter=0)
    assert np.all(mixed[1].x == 0) and np.all(mixed[1].lam == 0)


def test_float32_iterations_and_progress_bar(families, capsys):
    lps, solutions = families
    results = pdhg_solve(lps[:4], dtype=torch.float32, progress=True)
    assert "PDHG" in capsys.readouterr().err
    for sol, res in zip(solutions, results):
        assert res.status == "optimal" and close(res.objective, sol.z, 1e-3)
        assert res.x.dtype == np.float64
    assert pdhg_solve([]) == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"x0": [None]}, r"x0 must have one entry per LP \(2\)"),
        ({"x0": [np.zeros(3), None]}, r"x0\[0\] must have shape \(5,\)"),
        ({"lam0": [None, np.full(15, np.nan)]}, r"lam0\[1\] holds NaN"),
        ({"lam0": [None, np.full(14, 1.0)]}, r"lam0\[1\] must have shape \(15,\)"),
        ({"tol": 0.0}, "tol"),
        ({"tol": float("nan")}, "tol"),
        ({"max_iter": -1}, "max_iter"),
        ({"max_iter": 2.5}, "max_iter"),
        ({"check_every": 0}, "check_every"),
        ({"time_limit": 0.0}, "time_limit"),
        ({"dtype": torch.int64}, "dtype"),
        ({"device": "nonsense"}, "device"),
    ],
)
def test_bad_inputs_name_the_argument(random_batch, kwargs, match):
    with pytest.raises(ValueError, match=match):
        pdhg_solve(random_batch[:2], **kwargs)


def test_cuda_request_without_cuda_is_refused(random_batch):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ValueError, match="CUDA is not available"):
        pdhg_solve(random_batch[:1], device="cuda")
    with pytest.raises(TypeError, match=r"lps\[0\] must be an LP"):
        pdhg_solve(["not an LP"])


@pytest.mark.slow
def test_report_families_cold_iterations_and_batch_time():
    lps = family_batch(REPORT, 20, seed=100)
    start = time.perf_counter()
    results = pdhg_solve(lps, tol=1e-5)
    seconds = time.perf_counter() - start
    for lp, res in zip(lps, results):
        assert res.status == "optimal" and close(res.objective, solve(lp).z)
    medians = {
        family: np.median(
            [r.iterations for lp, r in zip(lps, results) if lp.name == family]
        )
        for family in REPORT
    }
    print(f"median cold iterations at tol 1e-5 {medians}; {seconds:.2f} s")
    assert seconds < 60
