"""HiGHS labels for standard-form LPs: ``x*``, ``lambda* >= 0`` and ``z*``.

:func:`solve` hands HiGHS exactly the LP the networks see, ``min c^T x  s.t.
A x <= b,  lb <= x <= ub`` (row bounds ``(-inf, b]``, the LP's column bounds).
For a minimization HiGHS's row duals ``y`` satisfy ``c - A^T y = z`` (``z``
the column duals, zero at free columns) and ``y <= 0`` on rows at their upper
bound, so the row duals in this package's convention (``c + A^T lambda -
lambda_lb + lambda_ub = 0``, ``lambda >= 0``) are ``lambda = -y``; the bound
duals follow from them (:meth:`~kkt_nets.data.lp.LP.bound_duals`).

:func:`new_highs` makes a silent HiGHS instance: highspy prints a copyright
banner on standard output when the first instance of a process is created,
which would corrupt a CLI's output.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import highspy
import numpy as np

from kkt_nets.data.lp import LP, nonzeros

SOLVERS = ("choose", "simplex", "ipm", "pdlp")
"""HiGHS's LP algorithms accepted by :func:`solve` (its ``solver`` option)."""


class LPError(ValueError):
    """HiGHS found no optimal solution (infeasible, unbounded, failed)."""


@dataclass(frozen=True)
class Solution:
    """An optimal primal-dual pair of a standard-form LP.

    Attributes
    ----------
    x : ndarray
        ``[n]`` primal solution.
    lam : ndarray
        ``[m]`` duals of ``A x <= b`` (``lam >= 0``, ``c + A^T lam = 0``).
    z : float
        ``c^T x`` of the LP solved (scaled units if it was scaled).
    status : str
        HiGHS's model status (``"Optimal"``).
    solve_seconds : float
        HiGHS's own run time.
    """

    x: np.ndarray
    lam: np.ndarray
    z: float
    status: str
    solve_seconds: float


def new_highs() -> highspy.Highs:
    """A HiGHS instance that prints nothing (no banner, no log).

    Returns
    -------
    highspy.Highs
    """
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)  # the banner is written by C++ straight to fd 1
        highs = highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)
    highs.setOptionValue("output_flag", False)
    return highs


def _highs_lp(lp: LP) -> highspy.HighsLp:
    model = highspy.HighsLp()
    model.num_col_ = lp.n
    model.num_row_ = lp.m
    model.col_cost_ = lp.c
    model.col_lower_ = np.where(np.isfinite(lp.lb), lp.lb, -highspy.kHighsInf)
    model.col_upper_ = np.where(np.isfinite(lp.ub), lp.ub, highspy.kHighsInf)
    model.row_lower_ = np.full(lp.m, -highspy.kHighsInf)
    model.row_upper_ = lp.b
    rows, cols, values = nonzeros(lp.A)
    order = np.lexsort((rows, cols))  # column-major order of A's nonzeros
    rows, cols, values = rows[order], cols[order], values[order]
    matrix = model.a_matrix_
    matrix.format_ = highspy.MatrixFormat.kColwise
    matrix.num_col_ = lp.n
    matrix.num_row_ = lp.m
    matrix.start_ = np.concatenate([[0], np.cumsum(np.bincount(cols, minlength=lp.n))])
    matrix.index_ = rows
    matrix.value_ = values
    return model


def solve(lp: LP, solver: str = "choose", tolerance: float | None = None) -> Solution:
    """Solve ``min c^T x  s.t.  A x <= b,  lb <= x <= ub`` with HiGHS.

    Parameters
    ----------
    lp : LP
    solver : {"choose", "simplex", "ipm", "pdlp"}
        HiGHS's algorithm (``"choose"``: its default, dual simplex here).
    tolerance : float, optional
        HiGHS's ``kkt_tolerance`` (every feasibility and optimality
        tolerance); default HiGHS's own (1e-7). A first-order method such as
        ``"pdlp"`` is compared with PDHG at the same tolerance.

    Returns
    -------
    Solution
        In the units of ``lp`` (scaled if it is).

    Raises
    ------
    LPError
        If HiGHS does not report an optimal solution; the message names the
        LP and HiGHS's status.
    """
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
    highs = new_highs()
    highs.setOptionValue("solver", solver)
    if tolerance is not None:
        highs.setOptionValue("kkt_tolerance", float(tolerance))
    highs.passModel(_highs_lp(lp))
    run_status = highs.run()
    status = highs.modelStatusToString(highs.getModelStatus())
    solution = highs.getSolution()
    if (
        run_status != highspy.HighsStatus.kOk
        or highs.getModelStatus() != highspy.HighsModelStatus.kOptimal
        or not (solution.value_valid and solution.dual_valid)
    ):
        raise LPError(
            f"LP {lp.name!r} ({lp.m} rows, {lp.n} columns) has no optimal "
            f"solution: HiGHS status {status!r}"
        )
    x = np.array(solution.col_value, dtype=np.float64)
    lam = -np.array(solution.row_dual, dtype=np.float64)
    return Solution(
        x=x,
        lam=lam,
        z=float(lp.c @ x),
        status=status,
        solve_seconds=float(highs.getRunTime()),
    )
