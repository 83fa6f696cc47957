"""HiGHS labels for standard-form LPs: ``x*``, ``lambda* >= 0`` and ``z*``.

:func:`solve` hands HiGHS exactly the LP the networks see, ``min c^T x  s.t.
A x <= b`` with ``x`` free (column bounds ``(-inf, inf)``, row bounds
``(-inf, b]``). For a minimization HiGHS's row duals ``y`` satisfy
``c - A^T y = 0`` at free columns and ``y <= 0`` on rows at their upper bound,
so the duals in this package's convention (``c + A^T lambda = 0``,
``lambda >= 0``) are ``lambda = -y``.
"""

from __future__ import annotations

from dataclasses import dataclass

import highspy
import numpy as np

from kkt_nets.data.lp import LP


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


def _highs_lp(lp: LP) -> highspy.HighsLp:
    model = highspy.HighsLp()
    model.num_col_ = lp.n
    model.num_row_ = lp.m
    model.col_cost_ = lp.c
    model.col_lower_ = np.full(lp.n, -highspy.kHighsInf)
    model.col_upper_ = np.full(lp.n, highspy.kHighsInf)
    model.row_lower_ = np.full(lp.m, -highspy.kHighsInf)
    model.row_upper_ = lp.b
    cols, rows = np.nonzero(lp.A.T)  # column-major order of A's nonzeros
    matrix = model.a_matrix_
    matrix.format_ = highspy.MatrixFormat.kColwise
    matrix.num_col_ = lp.n
    matrix.num_row_ = lp.m
    matrix.start_ = np.concatenate([[0], np.cumsum(np.bincount(cols, minlength=lp.n))])
    matrix.index_ = rows
    matrix.value_ = lp.A[rows, cols]
    return model


def solve(lp: LP) -> Solution:
    """Solve ``min c^T x  s.t.  A x <= b`` (``x`` free) with HiGHS.

    Parameters
    ----------
    lp : LP

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
    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
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
