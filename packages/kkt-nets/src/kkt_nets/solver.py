"""Solve your own LP: a trained network's prediction refined by PDHG, certified.

:func:`solve` takes ``scipy.optimize.linprog``'s arguments (dense or sparse),
:func:`solve_mps` an MPS file, :func:`solve_problems` a batch of
:class:`~kkt_nets.problem.Problem`. Each LP is scaled, a trained network
(``checkpoint``, optional) predicts a primal-dual pair, and the batched PDHG
solver (:func:`~kkt_nets.pdhg.pdhg_solve`) refines it, warm-started from the
prediction (cold without a checkpoint), until the relative duality gap and the
relative primal and dual residuals are below ``tol`` or a limit is reached.

Every :class:`SolveResult` is in the user's units and sense: ``x``, one dual
per user row (a sensitivity ``dz/d(row bound)``), the objective, a **dual
bound** (the Lagrangian bound of the returned duals: ``<= z*`` for a
minimization, ``>= z*`` for a maximization, valid whatever the status), the
gap between them, the largest violation of a row or bound, the status
(``optimal`` only when PDHG's termination criteria hold; otherwise
``iteration_limit``, ``time_limit``, ``primal_infeasible`` or
``dual_infeasible``), the iterations and the times. The console script
``kkt-solve`` writes it as JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kkt_nets.cli import add_flag
from kkt_nets.inference import check_takes, load_trained, predict_all
from kkt_nets.io import atomic_write, check_output_file
from kkt_nets.pdhg import pdhg_solve
from kkt_nets.problem import Bounds, Problem
from kkt_nets.train import resolve_device


@dataclass(frozen=True)
class SolveResult:
    """A refined, certified solution of one LP, in the user's units.

    Attributes
    ----------
    name : str
    status : str
        ``"optimal"``, ``"iteration_limit"``, ``"time_limit"``,
        ``"primal_infeasible"`` or ``"dual_infeasible"``.
    x : ndarray
        ``[n]`` primal solution (within its bounds).
    row_duals : ndarray
        ``[rows]`` duals of the user's rows, as sensitivities ``dz/d(bound)``
        (SciPy's ``marginals``, HiGHS's ``row_dual``).
    objective : float
        ``c^T x + offset``.
    dual_bound : float
        Lagrangian bound of ``row_duals``: ``<= z*`` (minimization) or
        ``>= z*`` (maximization); infinite where no finite bound exists.
    gap : float
        ``|objective - dual_bound| / max(1, |objective|)`` (``inf`` without a
        finite bound).
    relative_gap : float
        PDHG's termination measure ``|p - d| / (1 + |p| + |d|)``.
    max_violation : float
        Largest violation of a row or a bound, in the user's units.
    iterations : int
        PDHG iterations.
    warm_start : bool
        Whether a network's prediction started PDHG.
    predicted_objective, predicted_dual_bound, predicted_max_violation : float
        The network's raw prediction (NaN without a checkpoint).
    predict_seconds, refine_seconds : float
        Wall times of the prediction and of the refinement (of the whole
        batch when solved in one).
    """

    name: str
    status: str
    x: np.ndarray
    row_duals: np.ndarray
    objective: float
    dual_bound: float
    gap: float
    relative_gap: float
    max_violation: float
    iterations: int
    warm_start: bool
    predicted_objective: float
    predicted_dual_bound: float
    predicted_max_violation: float
    predict_seconds: float
    refine_seconds: float

    @property
    def optimal(self) -> bool:
        """Whether PDHG's termination criteria hold at ``tol``."""
        return self.status == "optimal"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (arrays as lists; infinite or NaN numbers as None)."""
        out: dict[str, Any] = {}
        for key, value in self.__dict__.items():
            if isinstance(value, np.ndarray):
                value = value.tolist()
            elif isinstance(value, float) and not math.isfinite(value):
                value = None
            out[key] = value
        return out


def _user_bound(problem: Problem, lower: float) -> float:
    """The standard form's lower bound in the user's sense and offset."""
    return (
        problem.objective(lower)
        if math.isfinite(lower)
        else (math.inf if problem.maximize else -math.inf)
    )


def solve_problems(
    problems: Sequence[Problem],
    checkpoint: str | Path | None = None,
    *,
    tol: float = 1e-4,
    max_iter: int = 100_000,
    device: str = "cpu",
    batch_size: int = 256,
    time_limit: float | None = None,
    progress: bool = False,
) -> list[SolveResult]:
    """Predict (with a checkpoint) and refine a batch of LPs.

    Parameters
    ----------
    problems : sequence of Problem
    checkpoint : str or Path, optional
        A ``kkt-train`` checkpoint; without it PDHG starts cold.
    tol : float
        Relative tolerance of PDHG's termination criteria.
    max_iter : int
        PDHG iteration cap per LP.
    device : str
        ``"cpu"`` or a CUDA device, for the network and PDHG.
    batch_size : int
        Network batch size.
    time_limit : float, optional
        Seconds for the refinement of the whole batch.
    progress : bool
        Show PDHG's progress bar.

    Returns
    -------
    list of SolveResult
        In the order of ``problems``.

    Raises
    ------
    ValueError
        On a bad checkpoint (named), one whose model cannot take an LP (the
        MLP's fixed size), or bad solver settings.
    """
    if len(problems) == 0:
        raise ValueError("problems must hold at least one Problem")
    lps = [problem.to_lp() for problem in problems]
    xs = lams = None
    predict_seconds = 0.0
    if checkpoint is not None:
        model, config = load_trained(checkpoint, device)
        check_takes(config, lps, str(checkpoint))
        xs, lams, predict_seconds = predict_all(model, lps, config, batch_size, device)
    started = time.perf_counter()
    refined = pdhg_solve(
        lps,
        xs,
        lams,
        tol=tol,
        max_iter=max_iter,
        device=device,
        time_limit=time_limit,
        progress=progress,
    )
    refine_seconds = time.perf_counter() - started
    results = []
    for k, (problem, lp, pdhg) in enumerate(zip(problems, lps, refined)):
        objective = problem.objective(lp.objective(pdhg.x))
        bound = _user_bound(problem, lp.dual_bound(pdhg.lam))
        predicted = (math.nan, math.nan, math.nan)
        if xs is not None:
            predicted = (
                problem.objective(lp.objective(xs[k])),
                _user_bound(problem, lp.dual_bound(lams[k])),
                lp.max_violation(xs[k]),
            )
        results.append(
            SolveResult(
                name=problem.name,
                status=pdhg.status,
                x=pdhg.x,
                row_duals=problem.row_duals(lp.unscale_dual(pdhg.lam)),
                objective=objective,
                dual_bound=bound,
                gap=abs(objective - bound) / max(1.0, abs(objective)),
                relative_gap=pdhg.relative_gap,
                max_violation=lp.max_violation(pdhg.x),
                iterations=pdhg.iterations,
                warm_start=xs is not None,
                predicted_objective=predicted[0],
                predicted_dual_bound=predicted[1],
                predicted_max_violation=predicted[2],
                predict_seconds=predict_seconds,
                refine_seconds=refine_seconds,
            )
        )
    return results


def solve(
    c: Any,
    A_ub: Any = None,
    b_ub: Any = None,
    A_eq: Any = None,
    b_eq: Any = None,
    bounds: Bounds | None = (0, None),
    *,
    checkpoint: str | Path | None = None,
    **settings: Any,
) -> SolveResult:
    """Solve ``min c^T x  s.t.  A_ub x <= b_ub,  A_eq x = b_eq`` within ``bounds``.

    The arguments of ``scipy.optimize.linprog`` (``A_ub``, ``A_eq`` dense or
    SciPy sparse; ``bounds`` one ``(lb, ub)`` pair or one per variable,
    ``None`` for no bound; default ``x >= 0``).

    Parameters
    ----------
    c, A_ub, b_ub, A_eq, b_eq, bounds
        The LP.
    checkpoint : str or Path, optional
        A trained network to warm-start PDHG.
    **settings
        ``tol``, ``max_iter``, ``device``, ``time_limit``, ``progress`` of
        :func:`solve_problems`.

    Returns
    -------
    SolveResult
        ``row_duals`` lists the ``A_ub`` rows, then the ``A_eq`` rows.

    Raises
    ------
    ValueError
        On bad input (named: NaN or inf in ``c``, ``A`` or ``b``, ``lb > ub``,
        mismatched shapes) or a checkpoint that cannot take the LP.
    """
    problem = Problem.from_arrays(c, A_ub, b_ub, A_eq, b_eq, bounds)
    return solve_problems([problem], checkpoint, **settings)[0]


def solve_mps(
    path: str | Path, *, checkpoint: str | Path | None = None, **settings: Any
) -> SolveResult:
    """Solve the LP of an MPS file (read with HiGHS); see :func:`solve`."""
    return solve_problems([Problem.from_mps(path)], checkpoint, **settings)[0]


def read_problem(path: Path) -> Problem:
    """An LP from ``path``: an MPS/LP file (HiGHS), or an ``.npz`` of arrays.

    The ``.npz`` holds ``linprog``'s arguments as dense arrays: ``c`` and any
    of ``A_ub``, ``b_ub``, ``A_eq``, ``b_eq``, ``lb``, ``ub``.

    Raises
    ------
    ValueError
        If the file is missing, unreadable or holds unknown arrays.
    """
    if path.suffix != ".npz":
        return Problem.from_mps(path)
    if not path.is_file():
        raise ValueError(f"problem file {path} not found")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read {path}: {error}") from error
    allowed = {"c", "A_ub", "b_ub", "A_eq", "b_eq", "lb", "ub"}
    if "c" not in arrays or set(arrays) - allowed:
        raise ValueError(
            f"{path} must hold c and any of {sorted(allowed - {'c'})}, got "
            f"{sorted(arrays)}"
        )
    n = np.asarray(arrays["c"]).size
    lb = arrays.pop("lb", np.zeros(n))
    ub = arrays.pop("ub", np.full(n, np.inf))
    return Problem.from_arrays(
        **arrays, bounds=list(zip(np.broadcast_to(lb, n), np.broadcast_to(ub, n)))
    )


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``kkt-solve``."""
    parser = argparse.ArgumentParser(
        prog="kkt-solve",
        description="Solve an LP (MPS/LP file or .npz of linprog arrays): network "
        "prediction + PDHG refinement, with a dual bound.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("problem", type=Path, help=".mps, .mps.gz, .lp or .npz")
    add_flag(parser, "checkpoint", type=Path, default=None, help="kkt-train")
    add_flag(parser, "tol", type=float, default=1e-4)
    add_flag(parser, "max_iter", type=int, default=100_000)
    add_flag(parser, "time_limit", type=float, default=None, help="seconds")
    add_flag(parser, "device", default="cpu", help="cpu or cuda[:N]")
    add_flag(parser, "out", type=Path, default=None, help="result JSON")
    add_flag(parser, "quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point ``kkt-solve``.

    Exits 0 when the LP is solved to optimality, 1 otherwise (the JSON is
    written either way), 2 on bad input.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        if args.out is not None:
            check_output_file(args.out, "--out")
        device = resolve_device(args.device, "--device")
        problem = read_problem(args.problem)
        result = solve_problems(
            [problem],
            args.checkpoint,
            tol=args.tol,
            max_iter=args.max_iter,
            device=device,
            time_limit=args.time_limit,
            progress=not args.quiet,
        )[0]
    except ValueError as error:
        parser.error(str(error))
    rows, cols = problem.shape
    print(
        f"{args.problem.name}: {rows} rows x {cols} variables, status "
        f"{result.status} after {result.iterations} PDHG iterations "
        f"({'warm' if result.warm_start else 'cold'} start); objective "
        f"{result.objective:.10g}, dual bound {result.dual_bound:.10g} (gap "
        f"{result.gap:.3g}), max violation {result.max_violation:.3g}; "
        f"predict {result.predict_seconds:.3f} s, refine {result.refine_seconds:.3f} s"
    )
    if args.out is not None:
        text = json.dumps(
            {"problem": str(args.problem), "rows": rows, **result.to_dict()}, indent=1
        )
        atomic_write(args.out, lambda tmp: tmp.write_text(text + "\n"))
    if not result.optimal:
        print(f"kkt-solve: not solved to optimality: {result.status}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
