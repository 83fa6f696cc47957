import json
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linprog

from kkt_nets import solve
from kkt_nets.data.generate_instances import main as generate_main
from kkt_nets.data.generators import random_lp_parts
from kkt_nets.problem import Problem
from kkt_nets.solver import SolveResult, solve_mps, solve_problems
from kkt_nets.solver import main as solve_main
from kkt_nets.train import parse_config, train


def random_feasible(seed: int, m: int = 12, n: int = 9):
    """Random LP with an equality row and mixed bounds, feasible at x0."""
    c, A, b, x0 = random_lp_parts(np.random.default_rng(seed), m, n)
    A_eq, b_eq = A[:1], A[:1] @ x0
    bounds = [(0, 1)] * (n - 2) + [(None, 1), (0, None)]
    return c, A[1:], b[1:], A_eq, b_eq, bounds


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
def test_solve_matches_linprog_with_a_certificate(sparse):
    c, A_ub, b_ub, A_eq, b_eq, bounds = random_feasible(0)
    if sparse:
        A_ub, A_eq = sp.csr_array(A_ub), sp.coo_matrix(A_eq)
    result = solve(c, A_ub, b_ub, A_eq, b_eq, bounds, tol=1e-6)
    ref = linprog(c, A_ub, b_ub, A_eq, b_eq, bounds, method="highs")
    assert isinstance(result, SolveResult) and result.optimal
    assert not result.warm_start and np.isnan(result.predicted_objective)
    assert result.objective == pytest.approx(ref.fun, rel=1e-5, abs=1e-5)
    assert result.max_violation < 1e-5
    # one variable is free above and one below: the certificate can be -inf
    # unless every reduced cost is absorbed; here it is finite and valid
    assert result.dual_bound <= ref.fun + 1e-6
    np.testing.assert_allclose(
        result.row_duals, np.concatenate([ref.ineqlin.marginals, ref.eqlin.marginals]),
        atol=1e-3,
    )  # fmt: skip
    assert result.iterations > 0 and result.refine_seconds > 0


def test_infeasible_and_unbounded_lps_are_never_optimal():
    infeasible = solve([1.0, 1.0], A_ub=[[1.0, 1.0]], b_ub=[-1.0], max_iter=20_000)
    assert infeasible.status == "primal_infeasible" and not infeasible.optimal
    unbounded = solve([-1.0, 0.0], A_ub=[[1.0, -1.0]], b_ub=[1.0], max_iter=20_000)
    assert unbounded.status == "dual_infeasible" and not unbounded.optimal
    capped = solve(*random_feasible(1)[:3], max_iter=3)
    assert capped.status == "iteration_limit" and not capped.optimal


def test_bad_input_is_refused_naming_the_argument():
    with pytest.raises(ValueError, match="c holds non-finite"):
        solve([np.nan, 1.0], A_ub=[[1.0, 1.0]], b_ub=[1.0])
    with pytest.raises(ValueError, match="A_ub holds non-finite"):
        solve([1.0, 1.0], A_ub=[[np.inf, 1.0]], b_ub=[1.0])
    with pytest.raises(ValueError, match="b_eq holds non-finite"):
        solve([1.0, 1.0], A_eq=[[1.0, 1.0]], b_eq=[np.nan])
    with pytest.raises(ValueError, match="lb > ub"):
        solve([1.0, 1.0], A_ub=[[1.0, 1.0]], b_ub=[1.0], bounds=(1, 0))
    with pytest.raises(ValueError, match="A_ub must have 2 columns"):
        solve([1.0, 1.0], A_ub=[[1.0, 1.0, 1.0]], b_ub=[1.0])
    with pytest.raises(ValueError, match="tol must be positive"):
        solve([1.0, 1.0], A_ub=[[1.0, 1.0]], b_ub=[1.0], tol=0.0)


def test_mps_file_gives_the_same_answer_as_the_arrays(tmp_path):
    c, A_ub, b_ub, A_eq, b_eq, bounds = random_feasible(2)
    problem = Problem.from_arrays(c, A_ub, b_ub, A_eq, b_eq, bounds)
    path = problem.write_mps(tmp_path / "lp.mps")
    from_file = solve_mps(path)
    from_arrays = solve(c, A_ub, b_ub, A_eq, b_eq, bounds)
    assert from_file.status == from_arrays.status == "optimal"
    np.testing.assert_allclose(from_file.x, from_arrays.x, atol=1e-12)
    assert from_file.objective == pytest.approx(from_arrays.objective, abs=1e-12)
    np.testing.assert_allclose(from_file.row_duals, from_arrays.row_duals, atol=1e-12)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("solver")
    data = root / "data"
    generate_main(
        [
            *("--family", "set_cover", "--rows", "10", "--cols", "12"),
            *("--n-train", "16", "--n-val", "4", "--n-test", "2"),
            *("--seed", "0", "--out", str(data), "--quiet"),
        ]
    )
    runs = {}
    for name, extra in (("gnn", []), ("mlp", ["--model", "mlp"])):
        runs[name] = root / name / "best.pt"
        train(
            parse_config(
                [
                    *("--data-dir", str(data), "--out-dir", str(root / name)),
                    *("--epochs", "2", "--embedding-size", "8", "--hidden", "16"),
                    *("--quiet", *extra),
                ]
            )
        )
    return runs


def set_cover_arrays(seed: int, rows: int, cols: int):
    rng = np.random.default_rng(seed)
    A = (rng.uniform(size=(rows, cols)) < 0.3).astype(float)
    A[np.arange(rows), rng.integers(cols, size=rows)] = 1.0
    cost = rng.integers(1, 10, size=cols).astype(float)
    return cost, -A, -np.ones(rows)  # A x >= 1 as -A x <= -1


def test_a_gnn_checkpoint_warm_starts_any_size_and_is_certified(checkpoints):
    for rows, cols in ((10, 12), (30, 40)):  # the training size and 3x larger
        c, A_ub, b_ub = set_cover_arrays(rows, rows, cols)
        result = solve(c, A_ub, b_ub, bounds=(0, 1), checkpoint=checkpoints["gnn"])
        ref = linprog(c, A_ub, b_ub, bounds=(0, 1), method="highs")
        assert result.warm_start and result.optimal
        assert result.objective == pytest.approx(ref.fun, rel=1e-3)
        # the raw prediction's certificate is a valid lower bound too
        assert result.predicted_dual_bound <= ref.fun + 1e-6
        assert result.dual_bound <= ref.fun + 1e-6
        assert np.isfinite(result.predicted_objective)


def test_an_mlp_checkpoint_refuses_an_lp_it_cannot_take(checkpoints):
    c, A_ub, b_ub = set_cover_arrays(0, 30, 40)
    with pytest.raises(ValueError, match=r"MLP for LPs of at most 10 rows x 12"):
        solve(c, A_ub, b_ub, bounds=(0, 1), checkpoint=checkpoints["mlp"])
    small = set_cover_arrays(1, 10, 12)
    assert solve(*small, bounds=(0, 1), checkpoint=checkpoints["mlp"]).optimal


def test_a_corrupted_checkpoint_is_named(tmp_path):
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match=r"broken\.pt"):
        solve([1.0], A_ub=[[1.0]], b_ub=[1.0], checkpoint=bad)


def test_a_batch_gives_what_each_lp_gives_alone():
    problems = [Problem.from_arrays(*random_feasible(s)) for s in range(3)]
    batch = solve_problems(problems)
    for problem, result in zip(problems, batch):
        alone = solve_problems([problem])[0]
        np.testing.assert_array_equal(alone.x, result.x)
        assert alone.iterations == result.iterations


def test_cli_writes_json_and_prints_no_banner(tmp_path, checkpoints):
    c, A_ub, b_ub = set_cover_arrays(3, 10, 12)
    path = Problem.from_arrays(c, A_ub, b_ub, bounds=(0, 1)).write_mps(
        tmp_path / "cover.mps"
    )
    out = tmp_path / "result.json"
    run = subprocess.run(
        [
            *(sys.executable, "-m", "kkt_nets.solver", str(path)),
            *("--checkpoint", str(checkpoints["gnn"]), "--out", str(out), "--quiet"),
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("cover.mps: 10 rows x 12 variables, status optimal")
    assert len(run.stdout.splitlines()) == 1  # no HiGHS banner
    result = json.loads(out.read_text())
    ref = linprog(c, A_ub, b_ub, bounds=(0, 1), method="highs")
    assert result["status"] == "optimal" and result["warm_start"]
    assert result["objective"] == pytest.approx(ref.fun, rel=1e-3)
    assert len(result["x"]) == 12 and len(result["row_duals"]) == 10
    assert result["dual_bound"] <= ref.fun + 1e-6


def test_cli_exit_codes(tmp_path, capsys):
    infeasible = tmp_path / "infeasible.npz"
    np.savez(infeasible, c=[1.0, 1.0], A_ub=[[1.0, 1.0]], b_ub=[-1.0])
    with pytest.raises(SystemExit) as exit_info:
        solve_main([str(infeasible), "--quiet", "--out", str(tmp_path / "r.json")])
    assert exit_info.value.code == 1
    assert json.loads((tmp_path / "r.json").read_text())["status"] == (
        "primal_infeasible"
    )
    assert "not solved to optimality" in capsys.readouterr().err
    for argv, message in (
        ([str(tmp_path / "none.mps")], "not found"),
        ([str(infeasible), "--out", str(tmp_path)], "is a folder"),
        ([str(infeasible), "--device", "tpu"], "--device must be"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            solve_main(argv)
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err
