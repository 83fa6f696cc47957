"""The LP form every model sees: ``min c^T x  s.t.  A x <= b,  lb <= x <= ub``.

:func:`standardize` maps a general LP onto it (one function for both the MLP
and the GNN paths):

* ``A_ub x <= b_ub`` rows are kept;
* ``A_ge x >= b_ge`` rows are negated (``-A_ge x <= -b_ge``);
* ``A_eq x = b_eq`` becomes two rows (``A_eq x <= b_eq``, ``-A_eq x <= -b_eq``);
* variable bounds stay on the columns (``lb``, ``ub``, possibly infinite) by
  default, where the networks' output layer enforces them; with
  ``bounds_as_rows=True`` (the spec's form) finite bounds become rows instead:
  ``x_j <= ub_j`` is ``+e_j`` with rhs ``ub_j``, ``x_j >= lb_j`` is ``-e_j``
  with rhs ``-lb_j``, and ``x`` is free.

Every row has a dual ``lambda_i >= 0``. With bounds on the columns, the bound
duals follow in closed form from the reduced costs ``r = c + A^T lambda``
(``lambda_lb = relu(r)``, ``lambda_ub = relu(-r)``, see
:mod:`kkt_nets.duality`), so any ``lambda >= 0`` gives the Lagrangian dual
bound ``g(lambda) = -b^T lambda + sum_j min_{lb_j <= x_j <= ub_j} r_j x_j <=
z*`` (:meth:`LP.dual_bound`). The KKT conditions are primal feasibility, dual
feasibility ``lambda >= 0``, stationarity ``c + A^T lambda - lambda_lb +
lambda_ub = 0`` and complementary slackness; strong duality reads ``c^T x* =
g(lambda*)`` (``= -b^T lambda*`` when the bounds are rows).

``A`` is a dense array or a SciPy sparse matrix (kept sparse: a user's LP may
not fit densely; :meth:`LP.dense_A` refuses beyond a size limit).

:func:`scale` divides each row ``[A_i, b_i]`` by its largest magnitude and
``c`` by its own, keeping the factors: a solution ``(x, lambda')`` of the
scaled LP is ``(x, diag(row_scale) lambda' / obj_scale)`` of the original, with
objective ``c'^T x / obj_scale``; bounds are unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp
import torch

from kkt_nets.duality import (
    complete_bound_duals,
    finite_or_zero,
    lagrangian_bound_terms,
)

ROW_KINDS = ("ub", "ge", "eq+", "eq-", "upper", "lower")
DENSE_LIMIT = 50_000_000
"""Most entries ``m * n`` that :meth:`LP.dense_A` builds (400 MB in float64)."""

Matrix = np.ndarray | sp.sparray | sp.spmatrix


def _as_matrix(label: str, A: Matrix) -> np.ndarray | sp.csr_array:
    """``A`` as a float64 dense array or CSR array, with a finiteness check."""
    if sp.issparse(A):
        A = sp.csr_array(A, dtype=np.float64)
        A.sum_duplicates()
        values = A.data
    else:
        A = np.asarray(A, dtype=np.float64)
        values = A
    if A.ndim != 2:
        raise ValueError(f"{label} must be a 2-D [m, n] matrix, got shape {A.shape}")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{label} holds non-finite values (NaN or inf)")
    return A


def _bound(label: str, value: np.ndarray | float | None, n: int, empty: float):
    """A bound vector of length ``n`` (``None``: ``empty``; NaN refused)."""
    bound = np.asarray(empty if value is None else value, dtype=np.float64)
    if bound.ndim > 1 or (bound.ndim == 1 and bound.shape != (n,)):
        raise ValueError(
            f"{label} must be a scalar or a vector of {n}, got shape {bound.shape}"
        )
    if np.any(np.isnan(bound)):
        raise ValueError(f"{label} holds NaN (use -inf / inf for no bound)")
    return np.array(np.broadcast_to(bound, (n,)))


def row_abs_max(A: np.ndarray | sp.csr_array) -> np.ndarray:
    """Largest ``|A_ij|`` of each row (0 for an empty row)."""
    if sp.issparse(A):
        return np.asarray(abs(A).max(axis=1).toarray()).ravel()
    return np.abs(A).max(axis=1, initial=0.0)


def nonzeros(A: np.ndarray | sp.csr_array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices, column indices and values of ``A``'s nonzeros, row-major."""
    if sp.issparse(A):
        coo = A.tocoo()
        order = np.lexsort((coo.col, coo.row))
        keep = coo.data[order] != 0
        rows, cols = coo.row[order][keep], coo.col[order][keep]
        return rows.astype(np.int64), cols.astype(np.int64), coo.data[order][keep]
    rows, cols = np.nonzero(A)
    return rows.astype(np.int64), cols.astype(np.int64), A[rows, cols]


@dataclass(frozen=True)
class LP:
    """An LP in the form ``min c^T x  s.t.  A x <= b,  lb <= x <= ub``.

    Attributes
    ----------
    A : ndarray or scipy.sparse.csr_array
        ``[m, n]`` constraint matrix (dense or sparse, float64).
    b : ndarray
        ``[m]`` right-hand side.
    c : ndarray
        ``[n]`` objective.
    row_scale : ndarray
        ``[m]`` factors already applied to the rows (ones if unscaled).
    obj_scale : float
        Factor already applied to ``c`` (one if unscaled).
    row_kind : tuple of str
        Where each row came from (one of :data:`ROW_KINDS`).
    name : str
        Identifier (family and index for generated instances).
    lb, ub : ndarray
        ``[n]`` variable bounds, ``-inf`` / ``inf`` where absent (default: free,
        the form of the spec, where bounds are rows).
    """

    A: np.ndarray | sp.csr_array
    b: np.ndarray
    c: np.ndarray
    row_scale: np.ndarray = field(default=None)  # type: ignore[assignment]
    obj_scale: float = 1.0
    row_kind: tuple[str, ...] = ()
    name: str = ""
    lb: np.ndarray = field(default=None)  # type: ignore[assignment]
    ub: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        A = _as_matrix("A", self.A)
        b = np.asarray(self.b, dtype=np.float64)
        c = np.asarray(self.c, dtype=np.float64)
        m, n = A.shape
        if b.shape != (m,):
            raise ValueError(f"b must have shape ({m},) to match A, got {b.shape}")
        if c.shape != (n,):
            raise ValueError(f"c must have shape ({n},) to match A, got {c.shape}")
        for label, value in (("b", b), ("c", c)):
            if not np.all(np.isfinite(value)):
                raise ValueError(f"{label} holds non-finite values (NaN or inf)")
        lb = _bound("lb", self.lb, n, -np.inf)
        ub = _bound("ub", self.ub, n, np.inf)
        if np.any(lb == np.inf) or np.any(ub == -np.inf):
            raise ValueError("lb must be < inf and ub > -inf for every variable")
        if np.any(lb > ub):
            raise ValueError(
                f"lb must not exceed ub (variable {int(np.argmax(lb > ub))} has "
                "lb > ub)"
            )
        row_scale = (
            np.ones(m) if self.row_scale is None else np.asarray(self.row_scale, float)
        )
        if row_scale.shape != (m,) or np.any(row_scale <= 0):
            raise ValueError(f"row_scale must be {m} positive factors")
        if not self.obj_scale > 0:
            raise ValueError(f"obj_scale must be positive, got {self.obj_scale!r}")
        kinds = tuple(self.row_kind) if self.row_kind else ("ub",) * m
        if len(kinds) != m or not set(kinds) <= set(ROW_KINDS):
            raise ValueError(f"row_kind must be {m} entries of {ROW_KINDS}")
        for label, value in (
            ("A", A),
            ("b", b),
            ("c", c),
            ("row_scale", row_scale),
            ("row_kind", kinds),
            ("lb", lb),
            ("ub", ub),
        ):
            object.__setattr__(self, label, value)

    @property
    def m(self) -> int:
        """Number of rows (constraints)."""
        return self.A.shape[0]

    @property
    def n(self) -> int:
        """Number of variables."""
        return self.A.shape[1]

    @property
    def has_bounds(self) -> bool:
        """Whether any variable bound is finite (bounds on the columns)."""
        return bool(np.isfinite(self.lb).any() or np.isfinite(self.ub).any())

    def dense_A(self) -> np.ndarray:
        """``A`` as a dense array.

        Raises
        ------
        ValueError
            If ``m * n`` exceeds :data:`DENSE_LIMIT` (the networks' padded
            batches and the MLP need dense matrices; PDHG and HiGHS do not).
        """
        if not sp.issparse(self.A):
            return self.A
        if self.m * self.n > DENSE_LIMIT:
            raise ValueError(
                f"LP {self.name!r} is {self.m} x {self.n}: a dense A would need "
                f"{8 * self.m * self.n / 1e9:.1f} GB (limit {DENSE_LIMIT:,} entries)"
            )
        return self.A.toarray()

    def objective(self, x: np.ndarray) -> float:
        """``c^T x`` in the original units (before objective scaling)."""
        return float(self.c @ x) / self.obj_scale

    def unscale_dual(self, lam: np.ndarray) -> np.ndarray:
        """Duals of the original rows from duals of these (scaled) rows."""
        return self.row_scale * np.asarray(lam) / self.obj_scale

    def max_violation(self, x: np.ndarray) -> float:
        """Largest violation of a row or bound, in original units (>= 0)."""
        residual = (self.A @ x - self.b) / self.row_scale
        bounds = np.maximum(self.lb - x, x - self.ub)
        return float(max(0.0, residual.max(initial=0.0), bounds.max(initial=0.0)))

    def bound_duals(self, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Closed-form duals ``(lambda_lb, lambda_ub)`` of the bounds given ``lam``.

        See :func:`kkt_nets.duality.complete_bound_duals`; in the units of this
        LP (scaled if it is).
        """
        r = torch.from_numpy(self.c + self.A.T @ np.asarray(lam, dtype=np.float64))
        lam_lb, lam_ub = complete_bound_duals(
            r, torch.from_numpy(self.lb), torch.from_numpy(self.ub)
        )
        return lam_lb.numpy(), lam_ub.numpy()

    def dual_bound(self, lam: np.ndarray) -> float:
        """The Lagrangian dual bound ``g(max(lam, 0)) <= z*``, in original units.

        Valid for any ``lam``: negative entries are projected to zero first. It
        is ``-inf`` where a reduced cost cannot be absorbed by a finite bound
        (a free variable with ``r_j != 0``), e.g. in the bounds-as-rows form
        unless stationarity holds exactly.
        """
        lam = np.maximum(np.asarray(lam, dtype=np.float64), 0.0)
        r = torch.from_numpy(self.c + self.A.T @ lam)
        value, unabsorbed = lagrangian_bound_terms(
            r, torch.from_numpy(self.lb), torch.from_numpy(self.ub)
        )
        if bool(unabsorbed.ne(0).any()):
            return -np.inf
        return (float(value.sum()) - float(self.b @ lam)) / self.obj_scale


def standardize(
    c: np.ndarray,
    A_ub: Matrix | None = None,
    b_ub: np.ndarray | None = None,
    A_ge: Matrix | None = None,
    b_ge: np.ndarray | None = None,
    A_eq: Matrix | None = None,
    b_eq: np.ndarray | None = None,
    lb: np.ndarray | float | None = 0.0,
    ub: np.ndarray | float | None = None,
    name: str = "",
    bounds_as_rows: bool = False,
) -> LP:
    """``min c^T x`` over the given rows and bounds, as ``A x <= b, lb <= x <= ub``.

    Parameters
    ----------
    c : ndarray
        ``[n]`` objective.
    A_ub, b_ub, A_ge, b_ge, A_eq, b_eq : array or sparse matrix, optional
        ``<=``, ``>=`` and ``=`` rows (``A`` dense or SciPy sparse; the result
        is sparse if any block is).
    lb, ub : ndarray or float, optional
        Variable bounds (``None`` or infinite: no bound). Default ``x >= 0``.
    name : str
    bounds_as_rows : bool
        Finite bounds as rows and ``x`` free (the spec's form) instead of on
        the columns.

    Returns
    -------
    LP

    Raises
    ------
    ValueError
        On shape mismatches, non-finite coefficients, a row block given
        without its right-hand side, ``lb > ub``, or no constraint rows.
    """
    c = np.asarray(c, dtype=np.float64)
    if c.ndim != 1 or c.size == 0:
        raise ValueError(f"c must be a non-empty vector, got shape {c.shape}")
    if not np.all(np.isfinite(c)):
        raise ValueError("c holds non-finite values (NaN or inf)")
    n = c.size
    rows: list[Matrix] = []
    rhs: list[np.ndarray] = []
    kinds: list[str] = []

    def add(label: str, A: Matrix | None, b: np.ndarray | None) -> None:
        if (A is None) != (b is None):
            raise ValueError(f"A_{label} and b_{label} must be given together")
        if A is None:
            return
        A = _as_matrix(f"A_{label}", A if sp.issparse(A) else np.atleast_2d(A))
        b = np.atleast_1d(np.asarray(b, dtype=np.float64))
        if A.shape[1] != n or b.shape != (A.shape[0],):
            raise ValueError(
                f"A_{label} must be [k, {n}] with b_{label} [k], got {A.shape} and "
                f"{b.shape}"
            )
        if not np.all(np.isfinite(b)):
            raise ValueError(f"b_{label} holds non-finite values (NaN or inf)")
        if label == "ub":
            blocks = [(A, b, "ub")]
        elif label == "ge":
            blocks = [(-A, -b, "ge")]
        else:
            blocks = [(A, b, "eq+"), (-A, -b, "eq-")]
        for block, right, kind in blocks:
            rows.append(block)
            rhs.append(right)
            kinds.extend([kind] * block.shape[0])

    add("ub", A_ub, b_ub)
    add("ge", A_ge, b_ge)
    add("eq", A_eq, b_eq)
    lower, upper = _bound("lb", lb, n, -np.inf), _bound("ub", ub, n, np.inf)
    if np.any(lower > upper):
        raise ValueError(
            f"lb must not exceed ub (variable {int(np.argmax(lower > upper))} has "
            "lb > ub)"
        )
    if not rows:
        raise ValueError("the LP has no constraints")
    sparse = any(map(sp.issparse, rows))
    lp = LP(
        sp.vstack(rows, format="csr") if sparse else np.vstack(rows),
        np.concatenate(rhs),
        c,
        row_kind=tuple(kinds),
        name=name,
        lb=lower,
        ub=upper,
    )
    return bounds_to_rows(lp)[0] if bounds_as_rows else lp


def bounds_to_rows(
    lp: LP, lam: np.ndarray | None = None
) -> tuple[LP, np.ndarray | None]:
    """The spec's form of ``lp``: finite bounds as rows, ``x`` free.

    Appends ``+e_j`` (rhs ``ub_j``, kind ``"upper"``) for each finite upper
    bound, then ``-e_j`` (rhs ``-lb_j``, kind ``"lower"``) for each finite
    lower bound, each with row scale 1 (its largest coefficient is already 1).

    Parameters
    ----------
    lp : LP
        Bounds on the columns.
    lam : ndarray, optional
        Row duals of ``lp``; if given, the duals of the new rows are completed
        from them (:meth:`LP.bound_duals`) and appended.

    Returns
    -------
    lp_rows : LP
        Same objective and solutions, every variable free.
    lam_rows : ndarray or None
        The duals of ``lp_rows``' rows, when ``lam`` is given.
    """
    upper, lower = (
        np.flatnonzero(np.isfinite(lp.ub)),
        np.flatnonzero(np.isfinite(lp.lb)),
    )
    rhs = np.concatenate([lp.ub[upper], -lp.lb[lower]])
    signs = np.concatenate([np.ones(upper.size), -np.ones(lower.size)])
    cols = np.concatenate([upper, lower])
    bound_rows = sp.csr_array(
        (signs, (np.arange(cols.size), cols)), shape=(cols.size, lp.n)
    )
    A = (
        sp.vstack([lp.A, bound_rows], format="csr")
        if sp.issparse(lp.A)
        else np.vstack([lp.A, bound_rows.toarray()])
    )
    lp_rows = LP(
        A,
        np.concatenate([lp.b, rhs]),
        lp.c,
        row_scale=np.concatenate([lp.row_scale, np.ones(rhs.size)]),
        obj_scale=lp.obj_scale,
        row_kind=lp.row_kind + ("upper",) * upper.size + ("lower",) * lower.size,
        name=lp.name,
    )
    if lam is None:
        return lp_rows, None
    lam_lb, lam_ub = lp.bound_duals(lam)
    bound_lam = np.concatenate([lam_ub[upper], lam_lb[lower]])
    return lp_rows, np.concatenate([np.asarray(lam, dtype=np.float64), bound_lam])


def scale(lp: LP) -> LP:
    """Divide each row ``[A_i, b_i]`` and ``c`` by their largest magnitudes.

    The factors multiply those already in ``lp`` (scaling twice is a no-op up
    to rounding); bounds are unchanged.
    """
    row_max = np.maximum(row_abs_max(lp.A), np.abs(lp.b))
    row_factor = 1.0 / np.where(row_max > 0, row_max, 1.0)
    c_max = float(np.abs(lp.c).max())
    c_factor = 1.0 / c_max if c_max > 0 else 1.0
    A = (
        sp.csr_array(sp.diags_array(row_factor) @ lp.A)
        if sp.issparse(lp.A)
        else lp.A * row_factor[:, None]
    )
    return replace(
        lp,
        A=A,
        b=lp.b * row_factor,
        c=lp.c * c_factor,
        row_scale=lp.row_scale * row_factor,
        obj_scale=lp.obj_scale * c_factor,
    )


def kkt_residuals(lp: LP, x: np.ndarray, lam: np.ndarray) -> dict[str, float]:
    """Largest primal, dual, stationarity and slackness residuals of ``(x, lam)``.

    In the units of ``lp`` (scaled if it is). Bound duals are completed in
    closed form (:meth:`LP.bound_duals`), so with bounds on the columns the
    stationarity residual is what they cannot absorb (free directions) and
    complementary slackness covers the bounds too; the duality gap is
    ``|c^T x - g(lam)|`` with ``g`` the Lagrangian bound (``|c^T x + b^T lam|``
    when the bounds are rows).
    """
    x = np.asarray(x, dtype=np.float64)
    lam = np.asarray(lam, dtype=np.float64)
    slack = lp.A @ x - lp.b
    r = torch.from_numpy(lp.c + lp.A.T @ lam)
    lb, ub = torch.from_numpy(lp.lb), torch.from_numpy(lp.ub)
    lam_lb, lam_ub = (t.numpy() for t in complete_bound_duals(r, lb, ub))
    value, unabsorbed = (t.numpy() for t in lagrangian_bound_terms(r, lb, ub))
    lb_finite, ub_finite = finite_or_zero(lb).numpy(), finite_or_zero(ub).numpy()
    bound_slack = np.concatenate([lam_lb * (x - lb_finite), lam_ub * (ub_finite - x)])
    bound_violation = np.maximum(lp.lb - x, x - lp.ub)
    return {
        "primal": float(
            max(np.max(slack, initial=0.0), np.max(bound_violation, initial=0.0))
        ),
        "dual": float(np.maximum(-lam, 0.0).max(initial=0.0)),
        "stationarity": float(np.abs(unabsorbed).max()),
        "complementary_slackness": float(
            np.abs(np.concatenate([lam * slack, bound_slack])).max(initial=0.0)
        ),
        "duality_gap": float(abs(lp.c @ x + lp.b @ lam - value.sum())),
    }
