r"""Batched PDHG for ``min c^T x  s.t.  A x <= b,  lb <= x <= ub`` (PDLP-style).

:func:`pdhg_solve` runs the primal-dual hybrid gradient method with the
enhancements of PDLP (Applegate et al. 2021) and cuPDLP (Lu & Yang) on a batch
of LPs of different sizes at once, cold or warm-started (e.g. from a network's
prediction), and returns one :class:`PDHGResult` per LP.

* **Batch.** The LPs form one block-diagonal problem over all their rows and
  columns (CSR ``A`` and ``A^T``); per-instance scalars (step size, primal
  weight, restart state) reach rows and columns by ``index_select`` and come
  back through CSR indicator matrices (an instance's rows are contiguous).
  Stopped instances take zero steps; once :data:`COMPACT_SHARE` of the working
  set has stopped, their rows, columns and nonzeros are dropped.
* **Preconditioning.** :data:`RUIZ_ITERATIONS` Ruiz (``l_inf``) iterations,
  then Pock-Chambolle (``alpha = 1``): ``A~ = D_r A D_c``, ``c~ = D_c c``,
  ``b~ = D_r b``, bounds ``/ D_c``; ``x = D_c x~`` and ``lam = D_r lam~``.
* **Steps.** ``x' = proj(x - tau (c + A^T lam))``, ``lam' = relu(lam + sigma
  (A (2 x' - x) - b))``, ``tau = eta / omega``, ``sigma = eta omega``, with
  PDLP's adaptive step size ``eta`` (a rejected step leaves the instance
  where it was) and primal weight ``omega``.
* **Checks** every ``check_every`` iterations and at iteration 0, in float64
  on the original data: PDLP's relative termination criteria on the current
  and the average iterate, infeasibility certificates, and cuPDLP's KKT-based
  adaptive restarts to the better of the two.

On the CPU the result of an LP does not depend on the batch it is solved in
(bit for bit, see :class:`_Sparse`).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor
from tqdm import tqdm

from kkt_nets.data.lp import LP, nonzeros
from kkt_nets.duality import lagrangian_bound_terms

STATUSES = (
    "optimal",
    "iteration_limit",
    "time_limit",
    "primal_infeasible",
    "dual_infeasible",
)
"""Every :attr:`PDHGResult.status`; only ``"optimal"`` meets the tolerance."""

RUIZ_ITERATIONS = 10
RESTART_SUFFICIENT, RESTART_NECESSARY, RESTART_ARTIFICIAL = 0.2, 0.8, 0.36
PRIMAL_WEIGHT_SMOOTHING = 0.5
PRIMAL_WEIGHT_RANGE = 1e4
"""The primal weight stays within this factor of its initial value."""
INFEASIBILITY_TOL = 1e-6
"""Largest miss of a ray certificate, relative to its bound or slope."""
COMPACT_SHARE = 0.25
"""Share of stopped instances in the working set that triggers compaction."""
_ETA_MAX = 1e12  # caps eta where steps never meet (dlam^T A dx = 0)
_ROUNDING = 1e-9  # a ray's bound / slope must exceed this share of its terms
_OPTIMAL, _ITERATION_LIMIT, _TIME_LIMIT, _PRIMAL_INF, _DUAL_INF = range(5)
# Columns of the per-instance measures of an iterate (see _evaluate).
_POBJ, _DOBJ, _GAP, _PRES, _DRES, _KKT_P, _KKT_D, _KKT_G = range(8)
# The working set's tensors by the axis they run along, and the index maps.
_AXES = {
    "inst": "gid b_norm c_norm omega0 eta omega w_sum kkt_last kkt_prev "
    "restart_k active",
    "row": "row_gid row_inst b64 dr64 b lam ax lam_sum lam_last lam_win",
    "col": "col_gid col_inst c64 lb64 ub64 dc64 c lb ub x aty x_sum x_last x_win",
    "nnz": "nz_row nz_col nz_val64 nz_val",
}
_REFERS = {"row_inst": "inst", "col_inst": "inst", "nz_row": "row", "nz_col": "col"}


@dataclass(frozen=True)
class PDHGResult:
    """PDHG's answer for one LP, in the units of the LP given.

    Attributes
    ----------
    x : ndarray
        ``[n]`` primal iterate, within ``[lb, ub]``.
    lam : ndarray
        ``[m]`` row duals, ``>= 0``.
    objective : float
        ``c^T x``.
    dual_objective : float
        ``-b^T lam + sum_j min_{lb_j <= x_j <= ub_j} r_j x_j`` over the
        components a finite bound absorbs (``r = c + A^T lam``).
    relative_gap : float
        ``|objective - dual_objective| / (1 + |objective| + |dual_objective|)``.
    primal_residual : float
        ``||relu(A x - b)||_2 / (1 + ||b||_2)``.
    dual_residual : float
        ``||r unabsorbed by the bounds||_2 / (1 + ||c||_2)``.
    status : str
        One of :data:`STATUSES` (``"optimal"``: all three measures within
        ``tol``). For the infeasible ones ``x`` and ``lam`` are the last
        iterates (the certificate is their movement or themselves).
    iterations : int
        PDHG step attempts before this LP stopped.
    """

    x: np.ndarray
    lam: np.ndarray
    objective: float
    dual_objective: float
    relative_gap: float
    primal_residual: float
    dual_residual: float
    status: str
    iterations: int


class _Sparse:
    """A CSR matrix whose products with a block do not depend on the batch.

    On the CPU it runs SciPy's kernel, which sums each row in order, so an LP
    gets the same bits alone or in any batch (MKL, behind torch's CPU product,
    rounds differently as the matrix grows); elsewhere torch's CSR product.
    """

    def __init__(
        self, rows: Tensor, cols: Tensor, vals: Tensor, shape: tuple[int, int]
    ) -> None:
        counts = torch.bincount(rows, minlength=shape[0])
        crow = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
        self.scipy = self.torch = None
        if vals.device.type == "cpu":
            parts = (vals.numpy(), cols.numpy(), crow.numpy())
            self.scipy = sp.csr_array(parts, shape=shape)
        else:
            with warnings.catch_warnings():  # "beta state", "invariant checks"
                warnings.simplefilter("ignore", UserWarning)
                self.torch = torch.sparse_csr_tensor(crow, cols, vals, shape)

    def __matmul__(self, v: Tensor) -> Tensor:
        """The product with a vector or a row-major matrix ``v``."""
        if self.torch is not None:
            return self.torch @ v
        return torch.from_numpy(self.scipy @ v.numpy())


class _Set(SimpleNamespace):
    """The instances being solved: tensors named in ``_AXES`` and operators.

    Data in original units are float64 (``b64``, ``c64``, ``lb64``, ``ub64``,
    ``nz_val64``, the preconditioner ``dr64``, ``dc64``); the scaled problem
    (``b``, ``c``, ``lb``, ``ub``, ``nz_val``) and the iterates are in the
    working dtype: ``x``, ``lam`` with ``ax = A~ x``, ``aty = A~^T lam``, the
    step-weighted sums since the last restart (``x_sum``, ``lam_sum``,
    ``w_sum``), the last restart point (``x_last``, ``lam_last``) and, in
    original units, the iterate at the last check (``x_win``, ``lam_win``).
    """

    def build_operators(self) -> None:
        """(Re)build the CSR operators from the nonzeros and index maps."""
        B, M, N = self.gid.numel(), self.row_gid.numel(), self.col_gid.numel()
        order = torch.argsort(self.nz_col, stable=True)
        rows, cols = self.nz_row, self.nz_col
        for suffix, vals in (("", self.nz_val), ("64", self.nz_val64)):
            setattr(self, "A" + suffix, _Sparse(rows, cols, vals, (M, N)))
            transposed = _Sparse(cols[order], rows[order], vals[order], (N, M))
            setattr(self, "AT" + suffix, transposed)
            for name, inst in (("S_row", self.row_inst), ("S_col", self.col_inst)):
                index = torch.arange(inst.numel(), device=vals.device)
                ones = torch.ones_like(index, dtype=vals.dtype)
                shape = (B, index.numel())
                setattr(self, name + suffix, _Sparse(inst, index, ones, shape))

    def compact(self) -> None:
        """Drop the stopped instances' rows, columns and nonzeros."""
        keep = {"inst": self.active}
        keep["row"] = self.active[self.row_inst]
        keep["col"] = self.active[self.col_inst]
        keep["nnz"] = keep["row"][self.nz_row]
        new_index = {axis: mask.cumsum(0) - 1 for axis, mask in keep.items()}
        for axis, names in _AXES.items():
            for name in names.split():
                value = getattr(self, name)[keep[axis]]
                if name in _REFERS:
                    value = new_index[_REFERS[name]][value]
                setattr(self, name, value)
        self.build_operators()


class _Point(NamedTuple):
    """An iterate in original units (float64) and its per-instance measures."""

    x: Tensor
    lam: Tensor
    meas: Tensor


class _Output(NamedTuple):
    """Stopped instances' results, over all the LPs given (concatenated)."""

    x: Tensor
    lam: Tensor
    meas: Tensor  # [len(lps), 5]: objective, dual objective, three measures
    status: Tensor
    iterations: Tensor


def _inv_sqrt(norms: Tensor) -> Tensor:
    """``1 / sqrt(norms)``, one where a norm is zero (an empty row or column)."""
    return torch.where(norms > 0, norms.rsqrt(), torch.ones_like(norms))


def _equilibrate(ws: _Set) -> tuple[Tensor, Tensor]:
    """PDLP's diagonal preconditioner ``(D_r, D_c)``: Ruiz, then Pock-Chambolle.

    Each Ruiz iteration divides every row and column by the square root of its
    largest magnitude; Pock-Chambolle (``alpha = 1``) then by the square root
    of its 1-norm. Segment reductions over sorted nonzeros are deterministic.
    """
    m, n = ws.row_gid.numel(), ws.col_gid.numel()
    order = torch.argsort(ws.nz_col, stable=True)
    row_len = torch.bincount(ws.nz_row, minlength=m)
    col_len = torch.bincount(ws.nz_col, minlength=n)
    dr, dc, mag = ws.nz_val64.new_ones(m), ws.nz_val64.new_ones(n), ws.nz_val64.abs()
    for i in range(RUIZ_ITERATIONS + 1):
        how = "max" if i < RUIZ_ITERATIONS else "sum"
        fr = torch.segment_reduce(mag, how, lengths=row_len, initial=0.0)
        fc = torch.segment_reduce(mag[order], how, lengths=col_len, initial=0.0)
        fr, fc = _inv_sqrt(fr), _inv_sqrt(fc)
        dr, dc, mag = dr * fr, dc * fc, mag * fr[ws.nz_row] * fc[ws.nz_col]
    return dr, dc


def _build(
    lps: Sequence[LP],
    x0: list[np.ndarray | None],
    lam0: list[np.ndarray | None],
    device: torch.device,
    dtype: torch.dtype,
) -> _Set:
    """Stack ``lps`` block-diagonally, precondition, and set up the start."""
    ms, ns = np.array([lp.m for lp in lps]), np.array([lp.n for lp in lps])
    row_off, col_off = np.cumsum(ms) - ms, np.cumsum(ns) - ns
    parts = [nonzeros(lp.A) for lp in lps]
    x0 = [np.clip(0.0 if x is None else x, lp.lb, lp.ub) for lp, x in zip(lps, x0)]
    lam0 = [
        np.zeros(lp.m) if y is None else np.maximum(y, 0) for lp, y in zip(lps, lam0)
    ]

    def cat(chunks: list, kind: torch.dtype = torch.float64) -> Tensor:
        joined = np.concatenate([np.atleast_1d(chunk) for chunk in chunks])
        return torch.as_tensor(joined, dtype=kind, device=device)

    B, M, N, long = len(lps), int(ms.sum()), int(ns.sum()), torch.int64
    ws = _Set(gid=torch.arange(B, device=device), x_win=cat(x0), lam_win=cat(lam0))
    ws.row_gid = torch.arange(M, device=device)
    ws.col_gid = torch.arange(N, device=device)
    ws.row_inst = cat([np.repeat(np.arange(B), ms)], long)
    ws.col_inst = cat([np.repeat(np.arange(B), ns)], long)
    ws.nz_row = cat([r + o for (r, _, _), o in zip(parts, row_off)], long)
    ws.nz_col = cat([c + o for (_, c, _), o in zip(parts, col_off)], long)
    ws.nz_val64 = cat([v for _, _, v in parts])
    ws.b64, ws.c64 = cat([lp.b for lp in lps]), cat([lp.c for lp in lps])
    ws.lb64, ws.ub64 = cat([lp.lb for lp in lps]), cat([lp.ub for lp in lps])
    ws.b_norm = cat([np.linalg.norm(lp.b) for lp in lps])
    ws.c_norm = cat([np.linalg.norm(lp.c) for lp in lps])
    ws.dr64, ws.dc64 = dr, dc = _equilibrate(ws)
    scaled = ws.nz_val64 * dr[ws.nz_row] * dc[ws.nz_col]
    ws.nz_val, ws.b, ws.c = scaled.to(dtype), ws.b64 * dr, ws.c64 * dc
    ws.b, ws.c = ws.b.to(dtype), ws.c.to(dtype)
    ws.lb, ws.ub = (ws.lb64 / dc).to(dtype), (ws.ub64 / dc).to(dtype)
    ws.build_operators()
    _start(ws, scaled)
    return ws


def _start(ws: _Set, scaled: Tensor) -> None:
    """Initial iterates and state: ``eta = 1 / max |A~_ij|``, ``omega``."""
    ws.x = torch.clamp((ws.x_win / ws.dc64).to(ws.c.dtype), ws.lb, ws.ub)
    ws.lam = (ws.lam_win / ws.dr64).to(ws.c.dtype)
    ws.ax, ws.aty = ws.A @ ws.x, ws.AT @ ws.lam
    ws.x_sum, ws.lam_sum = torch.zeros_like(ws.x), torch.zeros_like(ws.lam)
    ws.x_last, ws.lam_last = ws.x.clone(), ws.lam.clone()
    lengths = torch.bincount(ws.row_inst[ws.nz_row], minlength=ws.gid.numel())
    biggest = torch.segment_reduce(scaled.abs(), "max", lengths=lengths, initial=0.0)
    ws.eta = torch.where(biggest > 0, 1 / biggest, 1.0).to(ws.c.dtype)
    c_norm, b_norm = (ws.S_col @ ws.c**2).sqrt(), (ws.S_row @ ws.b**2).sqrt()
    usable = (c_norm > 1e-10) & (b_norm > 1e-10)
    ws.omega = ws.omega0 = torch.where(usable, c_norm / b_norm, 1.0)
    ws.w_sum = torch.zeros_like(ws.eta)
    ws.kkt_last = torch.zeros_like(ws.b_norm)
    ws.kkt_prev = torch.full_like(ws.b_norm, math.inf)
    ws.restart_k = torch.zeros_like(ws.gid)
    ws.active = torch.ones_like(ws.gid, dtype=torch.bool)


def _step(ws: _Set, k: int) -> None:
    """One PDHG step attempt (the ``k``-th) of every active instance.

    PDLP's adaptive rule: accept where ``eta <= eta_bar = ||dz||_omega^2 / (2
    |dlam^T A dx|)``; either way ``eta`` becomes ``min((1 - (k+1)^-0.3)
    eta_bar, (1 + (k+1)^-0.6) eta)``. Rejected and stopped instances keep
    their iterate; accepted steps enter the average with weight ``eta``.
    """
    live = ws.active.to(ws.eta.dtype)
    tau = (ws.eta / ws.omega * live).index_select(0, ws.col_inst)
    sigma = (ws.eta * ws.omega * live).index_select(0, ws.row_inst)
    x = torch.clamp(ws.x - tau * (ws.c + ws.aty), ws.lb, ws.ub)
    ax = ws.A @ x
    lam = torch.relu(ws.lam + sigma * (2 * ax - ws.ax - ws.b))
    aty = ws.AT @ lam
    dx, dlam = x - ws.x, lam - ws.lam
    interaction = (ws.S_row @ (dlam * (ax - ws.ax))).abs()
    movement = 0.5 * (ws.omega * (ws.S_col @ dx**2) + (ws.S_row @ dlam**2) / ws.omega)
    accept = (ws.eta * interaction <= movement) & ws.active
    eta_bar = torch.where(interaction > 0, movement / interaction, _ETA_MAX)
    shrink, grow = 1 - (k + 1) ** -0.3, 1 + (k + 1) ** -0.6
    eta = torch.minimum(shrink * eta_bar, grow * ws.eta).clamp_max(_ETA_MAX)
    weight = torch.where(accept, ws.eta, 0.0)
    ws.eta = torch.where(ws.active, eta, ws.eta)
    ws.w_sum += weight
    w_col, w_row = weight[ws.col_inst], weight[ws.row_inst]
    ws.x_sum.addcmul_(w_col, x)
    ws.lam_sum.addcmul_(w_row, lam)
    col, row = w_col > 0, w_row > 0
    ws.x, ws.aty = torch.where(col, x, ws.x), torch.where(col, aty, ws.aty)
    ws.lam, ws.ax = torch.where(row, lam, ws.lam), torch.where(row, ax, ws.ax)


def _evaluate(ws: _Set, x: Tensor, lam: Tensor) -> _Point:
    """A scaled iterate in original units, with its measures (float64).

    The columns of ``meas``: objective, dual objective, the three relative
    measures of :class:`PDHGResult`, then the squared primal and dual
    residuals of the scaled problem and the squared gap (for restarts).
    """
    x = torch.clamp(ws.dc64 * x.double(), ws.lb64, ws.ub64)
    lam = torch.relu(ws.dr64 * lam.double())
    violation = torch.relu(ws.A64 @ x - ws.b64)
    value, unabsorbed = lagrangian_bound_terms(ws.c64 + ws.AT64 @ lam, ws.lb64, ws.ub64)
    rows = torch.stack((violation**2, (ws.dr64 * violation) ** 2, ws.b64 * lam), 1)
    cols = (ws.c64 * x, value, unabsorbed**2, (ws.dc64 * unabsorbed) ** 2)
    rows, cols = ws.S_row64 @ rows, ws.S_col64 @ torch.stack(cols, 1)
    pobj, dobj = cols[:, 0], cols[:, 1] - rows[:, 2]
    gap = (pobj - dobj).abs()
    relative = (
        gap / (1 + pobj.abs() + dobj.abs()),
        rows[:, 0].sqrt() / (1 + ws.b_norm),
        cols[:, 2].sqrt() / (1 + ws.c_norm),
    )
    meas = torch.stack((pobj, dobj, *relative, rows[:, 1], cols[:, 3], gap**2), 1)
    return _Point(x, lam, meas)


def _kkt(meas: Tensor, omega: Tensor) -> Tensor:
    """The weighted KKT error of cuPDLP (scaled problem)."""
    omega = omega.double()
    return (omega * meas[:, _KKT_P] + meas[:, _KKT_D] / omega + meas[:, _KKT_G]).sqrt()


def _rays(ws: _Set, dx: Tensor, dlam: Tensor) -> tuple[Tensor, Tensor]:
    """Which instances the directions ``(dx, dlam)`` prove infeasible.

    ``dlam`` is projected onto ``>= 0`` and ``dx`` onto the recession cone of
    the bounds, so only the misses are inexact. Primal infeasible: the
    Lagrangian bound of ``dlam`` with ``c = 0`` is positive and ``A^T dlam``
    misses what the bounds absorb by at most :data:`INFEASIBILITY_TOL` times
    it (were the LP feasible, every feasible ``x`` would have free entries of
    norm ``>= 1 / INFEASIBILITY_TOL``). Dual infeasible: ``c^T dx < 0`` and
    ``||relu(A dx)||`` at most that share of ``|c^T dx|`` (were it bounded,
    every dual solution would have norm ``>= 1 / INFEASIBILITY_TOL``).
    """
    dlam = torch.relu(dlam)
    value, unabsorbed = lagrangian_bound_terms(ws.AT64 @ dlam, ws.lb64, ws.ub64)
    b_lam = ws.b64 * dlam
    rows = ws.S_row64 @ torch.stack((b_lam, b_lam.abs()), 1)
    cols = ws.S_col64 @ torch.stack((value, value.abs(), unabsorbed**2), 1)
    bound, terms = cols[:, 0] - rows[:, 0], cols[:, 1] + rows[:, 1]
    miss = cols[:, 2].sqrt()
    primal = (bound > _ROUNDING * terms) & (miss <= INFEASIBILITY_TOL * bound)
    dx = torch.where(ws.lb64.isfinite(), torch.relu(dx), dx)
    dx = torch.where(ws.ub64.isfinite(), -torch.relu(-dx), dx)
    c_dx = ws.c64 * dx
    cols = ws.S_col64 @ torch.stack((c_dx, c_dx.abs()), 1)
    slope, miss = -cols[:, 0], (ws.S_row64 @ torch.relu(ws.A64 @ dx) ** 2).sqrt()
    dual = (slope > _ROUNDING * cols[:, 1]) & (miss <= INFEASIBILITY_TOL * slope)
    return primal, dual


def _restart(
    ws: _Set, k: int, cur: _Point, avg: _Point, avg_x: Tensor, avg_lam: Tensor
) -> Tensor:
    """The adaptive restart of cuPDLP; returns the instances moved to their average.

    The candidate is the better (KKT error) of the current and the average
    iterate; restart on a sufficient (0.2), necessary-without-progress (0.8)
    or artificial (0.36 of all iterations) criterion. A restart updates the
    primal weight by PDLP's smoothed rule from the movement since the last.
    """
    kkt_cur = _kkt(cur.meas, ws.omega)
    kkt_avg = torch.where(ws.w_sum > 0, _kkt(avg.meas, ws.omega), math.inf)
    to_avg, cand = kkt_avg < kkt_cur, torch.minimum(kkt_cur, kkt_avg)
    restart = ws.active & (
        (cand <= RESTART_SUFFICIENT * ws.kkt_last)
        | ((cand <= RESTART_NECESSARY * ws.kkt_last) & (cand > ws.kkt_prev))
        | (k - ws.restart_k >= RESTART_ARTIFICIAL * k)
    )
    ws.kkt_prev, jump = cand, restart & to_avg
    if bool(jump.any()):
        col, row = jump[ws.col_inst], jump[ws.row_inst]
        ws.x, ws.lam = torch.where(col, avg_x, ws.x), torch.where(row, avg_lam, ws.lam)
        ws.aty = torch.where(col, ws.AT @ avg_lam, ws.aty)
        ws.ax = torch.where(row, ws.A @ avg_x, ws.ax)
    if not bool(restart.any()):
        return jump
    dx2 = ws.S_col @ (ws.x - ws.x_last) ** 2
    dy2 = ws.S_row @ (ws.lam - ws.lam_last) ** 2
    theta, low = PRIMAL_WEIGHT_SMOOTHING, ws.omega0 / PRIMAL_WEIGHT_RANGE
    omega = torch.exp(theta * 0.5 * torch.log(dy2 / dx2) + (1 - theta) * ws.omega.log())
    omega = omega.clamp(low, ws.omega0 * PRIMAL_WEIGHT_RANGE)
    ws.omega = torch.where(restart & (dx2 > 1e-20) & (dy2 > 1e-20), omega, ws.omega)
    col, row = restart[ws.col_inst], restart[ws.row_inst]
    ws.x_last = torch.where(col, ws.x, ws.x_last)
    ws.lam_last = torch.where(row, ws.lam, ws.lam_last)
    ws.x_sum, ws.lam_sum = ws.x_sum.masked_fill(col, 0), ws.lam_sum.masked_fill(row, 0)
    ws.w_sum = ws.w_sum.masked_fill(restart, 0.0)
    kkt = _kkt(torch.where(to_avg[:, None], avg.meas, cur.meas), ws.omega)
    ws.kkt_last = torch.where(restart, kkt, ws.kkt_last)
    ws.kkt_prev = ws.kkt_prev.masked_fill(restart, math.inf)
    ws.restart_k = torch.where(restart, k, ws.restart_k)
    return jump


def _pick(ws: _Set, use_avg: Tensor, cur: _Point, avg: _Point | None) -> _Point:
    """Per instance, the average iterate where ``use_avg``, else the current."""
    if avg is None:
        return cur
    col, row = use_avg[ws.col_inst], use_avg[ws.row_inst]
    return _Point(
        torch.where(col, avg.x, cur.x),
        torch.where(row, avg.lam, cur.lam),
        torch.where(use_avg[:, None], avg.meas, cur.meas),
    )


def _record(ws: _Set, out: _Output, status: Tensor, k: int, point: _Point) -> int:
    """Store the instances that stopped (``status >= 0``); their count."""
    done = status >= 0
    col, row = done[ws.col_inst], done[ws.row_inst]
    out.x[ws.col_gid[col]] = point.x[col]
    out.lam[ws.row_gid[row]] = point.lam[row]
    gid = ws.gid[done]
    out.meas[gid] = point.meas[done, :_KKT_P]
    out.status[gid], out.iterations[gid] = status[done], k
    return int(done.sum())


def _check(ws: _Set, out: _Output, k: int, tol: float, limit: int | None) -> int:
    """Termination, infeasibility, limits and restarts after ``k`` iterations.

    Returns the number of instances that stopped.
    """
    cur, avg, avg_scaled = _evaluate(ws, ws.x, ws.lam), None, None
    status = torch.full_like(ws.restart_k, -1)
    status[(cur.meas[:, _GAP:_KKT_P] <= tol).all(1) & ws.active] = _OPTIMAL
    use_avg = torch.zeros_like(ws.active)
    if k > 0:
        w = ws.w_sum.clamp_min(torch.finfo(ws.w_sum.dtype).tiny)
        avg_scaled = (ws.x_sum / w[ws.col_inst], ws.lam_sum / w[ws.row_inst])
        avg, has_avg = _evaluate(ws, *avg_scaled), ws.w_sum > 0
        use_avg = (avg.meas[:, _GAP:_KKT_P] <= tol).all(1) & has_avg & (status < 0)
        status[use_avg & ws.active] = _OPTIMAL
        primal, dual = _rays(ws, cur.x - ws.x_win, cur.lam - ws.lam_win)
        for point, valid in ((cur, ws.active), (avg, has_avg)):
            more_primal, more_dual = _rays(ws, point.x, point.lam)
            primal, dual = primal | (more_primal & valid), dual | (more_dual & valid)
        status[primal & (status < 0) & ws.active] = _PRIMAL_INF
        status[dual & (status < 0) & ws.active] = _DUAL_INF
    if limit is not None:
        stopped = (status < 0) & ws.active
        if avg is not None:
            better = (_kkt(avg.meas, ws.omega) < _kkt(cur.meas, ws.omega)) & has_avg
            use_avg = use_avg | (stopped & better)
        status[stopped] = limit
    count = _record(ws, out, status, k, _pick(ws, use_avg, cur, avg))
    ws.active = ws.active & (status < 0)
    if k == 0:
        ws.kkt_last, jump = _kkt(cur.meas, ws.omega), None
    else:
        jump = _restart(ws, k, cur, avg, *avg_scaled)
    window = cur if jump is None else _pick(ws, jump, cur, avg)
    ws.x_win, ws.lam_win = window.x, window.lam
    return count


def _require(ok: bool, message: str) -> None:
    """Raise ``ValueError(message)`` unless ``ok``."""
    if not ok:
        raise ValueError(message)


def _validate_starts(
    label: str, starts: Sequence[np.ndarray | None] | None, sizes: list[int]
) -> list[np.ndarray | None]:
    """Warm starts as float64 arrays (``None`` kept), checked against ``sizes``."""
    if starts is None:
        return [None] * len(sizes)
    count = f"one entry per LP ({len(sizes)}), got {len(starts)}"
    _require(len(starts) == len(sizes), f"{label} must have {count}")
    checked = [None if s is None else np.asarray(s, np.float64) for s in starts]
    for i, (start, size) in enumerate(zip(checked, sizes)):
        if start is not None:
            shape = f"({size},), got {start.shape}"
            _require(start.shape == (size,), f"{label}[{i}] must have shape {shape}")
            _require(np.isfinite(start).all(), f"{label}[{i}] holds NaN or inf")
    return checked


def _validate_options(
    tol: float,
    max_iter: int,
    check_every: int,
    device: str | torch.device,
    dtype: torch.dtype,
    time_limit: float | None,
) -> torch.device:
    """Check the scalar options; the torch device to run on."""
    number = isinstance(tol, int | float) and not isinstance(tol, bool)
    _require(number and 0 < tol < math.inf, f"tol must be positive, got {tol!r}")
    for label, value, least in (
        ("max_iter", max_iter, 0),
        ("check_every", check_every, 1),
    ):
        integer = isinstance(value, int | np.integer) and not isinstance(value, bool)
        message = f"{label} must be an integer >= {least}, got {value!r}"
        _require(integer and value >= least, message)
    message = f"time_limit must be positive or None, got {time_limit!r}"
    _require(time_limit is None or time_limit > 0, message)
    message = f"dtype must be torch.float32 or torch.float64, got {dtype!r}"
    _require(dtype in (torch.float32, torch.float64), message)
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"device {device!r} is not a torch device") from error
    available = device.type != "cuda" or torch.cuda.is_available()
    _require(available, f"device={str(device)!r} but CUDA is not available here")
    return device


def _results(lps: Sequence[LP], out: _Output) -> list[PDHGResult]:
    """Split the concatenated output into one :class:`PDHGResult` per LP."""
    x, lam, meas, status, iterations = (t.cpu().numpy() for t in out)
    xs = np.split(x, np.cumsum([lp.n for lp in lps])[:-1])
    lams = np.split(lam, np.cumsum([lp.m for lp in lps])[:-1])
    return [
        PDHGResult(xi.copy(), li.copy(), *map(float, mi), STATUSES[code], int(k))
        for xi, li, mi, code, k in zip(xs, lams, meas, status, iterations)
    ]


def pdhg_solve(
    lps: Sequence[LP],
    x0: Sequence[np.ndarray | None] | None = None,
    lam0: Sequence[np.ndarray | None] | None = None,
    *,
    tol: float = 1e-4,
    max_iter: int = 100_000,
    check_every: int = 64,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float64,
    time_limit: float | None = None,
    progress: bool = False,
) -> list[PDHGResult]:
    """Solve a batch of LPs ``min c^T x  s.t.  A x <= b,  lb <= x <= ub`` by PDHG.

    Parameters
    ----------
    lps : sequence of LP
        The LPs (any sizes, dense or sparse ``A``), solved together.
    x0, lam0 : sequence of (ndarray or None), optional
        Warm starts, one entry per LP, projected onto ``[lb, ub]`` and onto
        ``lam >= 0``; ``None`` (or no sequence): cold, ``x`` the projection
        of 0 onto the bounds, ``lam = 0``.
    tol : float
        Relative tolerance of the three measures of :class:`PDHGResult`
        (PDLP's termination criteria, in the units of the LPs given).
    max_iter : int
        Most PDHG step attempts per LP.
    check_every : int
        Iterations between termination / restart checks (also at 0).
    device : str or torch.device
        Where to iterate (``"cpu"``, ``"cuda"``).
    dtype : torch.dtype
        Working precision of the iterations (checks run in float64).
    time_limit : float, optional
        Seconds after which the LPs still running stop (``"time_limit"``),
        noticed at the next check.
    progress : bool
        Show a tqdm bar of the LPs done.

    Returns
    -------
    list of PDHGResult
        One per LP, in the order of ``lps``.

    Raises
    ------
    ValueError
        On a warm start of the wrong length, shape or with NaN / inf, a
        non-positive ``tol``, ``max_iter < 0``, ``check_every < 1``, a
        non-positive ``time_limit``, an unsupported ``dtype`` or an
        unavailable ``device``.
    TypeError
        If an entry of ``lps`` is not an :class:`~kkt_nets.data.lp.LP`.
    """
    for i, lp in enumerate(lps):
        if not isinstance(lp, LP):
            raise TypeError(f"lps[{i}] must be an LP, got {type(lp).__name__}")
    x_starts = _validate_starts("x0", x0, [lp.n for lp in lps])
    lam_starts = _validate_starts("lam0", lam0, [lp.m for lp in lps])
    device = _validate_options(tol, max_iter, check_every, device, dtype, time_limit)
    if not lps:
        return []
    clock = time.perf_counter()
    ws = _build(lps, x_starts, lam_starts, device, dtype)
    B, k = len(lps), 0
    out = _Output(
        torch.zeros_like(ws.x_win),
        torch.zeros_like(ws.lam_win),
        torch.zeros(B, _KKT_P, dtype=torch.float64, device=device),
        torch.zeros(B, dtype=torch.int64, device=device),
        torch.zeros(B, dtype=torch.int64, device=device),
    )
    with tqdm(total=B, disable=not progress, desc="PDHG", unit="LP") as bar:
        while True:
            late = time_limit is not None and time.perf_counter() - clock >= time_limit
            limit = _ITERATION_LIMIT if k >= max_iter else _TIME_LIMIT if late else None
            bar.update(_check(ws, out, k, tol, limit))
            running = int(ws.active.sum())
            if running == 0:
                break
            if ws.gid.numel() - running >= COMPACT_SHARE * ws.gid.numel():
                ws.compact()
            for _ in range(min(check_every, max_iter - k)):
                k += 1
                _step(ws, k)
    return _results(lps, out)
