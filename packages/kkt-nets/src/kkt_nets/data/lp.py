"""The LP form every model sees: ``min c^T x  s.t.  A x <= b``.

:func:`standardize` maps a general LP onto it (one function for both the MLP
and the GNN paths):

* ``A_ub x <= b_ub`` rows are kept;
* ``A_ge x >= b_ge`` rows are negated (``-A_ge x <= -b_ge``);
* ``A_eq x = b_eq`` becomes two rows (``A_eq x <= b_eq``, ``-A_eq x <= -b_eq``);
* finite bounds become rows: ``x_j <= ub_j`` is ``+e_j`` with rhs ``ub_j``,
  ``x_j >= lb_j`` is ``-e_j`` with rhs ``-lb_j`` (so ``x >= 0`` lives in the
  rows and ``x`` is otherwise free).

Every row has a dual ``lambda_i >= 0``; the KKT conditions are primal
feasibility ``A x <= b``, dual feasibility ``lambda >= 0``, stationarity
``c + A^T lambda = 0`` and complementary slackness ``lambda_i (A x - b)_i = 0``;
strong duality reads ``c^T x* = -b^T lambda*``.

:func:`scale` divides each row ``[A_i, b_i]`` by its largest magnitude and
``c`` by its own, keeping the factors: a solution ``(x, lambda')`` of the
scaled LP is ``(x, diag(row_scale) lambda' / obj_scale)`` of the original, with
objective ``c'^T x / obj_scale``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

ROW_KINDS = ("ub", "ge", "eq+", "eq-", "upper", "lower")


@dataclass(frozen=True)
class LP:
    """An LP in the form ``min c^T x  s.t.  A x <= b`` (``x`` free).

    Attributes
    ----------
    A : ndarray
        ``[m, n]`` constraint matrix.
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
    """

    A: np.ndarray
    b: np.ndarray
    c: np.ndarray
    row_scale: np.ndarray = field(default=None)  # type: ignore[assignment]
    obj_scale: float = 1.0
    row_kind: tuple[str, ...] = ()
    name: str = ""

    def __post_init__(self) -> None:
        A = np.asarray(self.A, dtype=np.float64)
        b = np.asarray(self.b, dtype=np.float64)
        c = np.asarray(self.c, dtype=np.float64)
        if A.ndim != 2:
            raise ValueError(f"A must be a 2-D [m, n] matrix, got shape {A.shape}")
        m, n = A.shape
        if b.shape != (m,):
            raise ValueError(f"b must have shape ({m},) to match A, got {b.shape}")
        if c.shape != (n,):
            raise ValueError(f"c must have shape ({n},) to match A, got {c.shape}")
        for label, value in (("A", A), ("b", b), ("c", c)):
            if not np.all(np.isfinite(value)):
                raise ValueError(f"{label} holds non-finite values")
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
        object.__setattr__(self, "A", A)
        object.__setattr__(self, "b", b)
        object.__setattr__(self, "c", c)
        object.__setattr__(self, "row_scale", row_scale)
        object.__setattr__(self, "row_kind", kinds)

    @property
    def m(self) -> int:
        """Number of rows (constraints)."""
        return self.A.shape[0]

    @property
    def n(self) -> int:
        """Number of variables."""
        return self.A.shape[1]

    def objective(self, x: np.ndarray) -> float:
        """``c^T x`` in the original units (before objective scaling)."""
        return float(self.c @ x) / self.obj_scale

    def unscale_dual(self, lam: np.ndarray) -> np.ndarray:
        """Duals of the original rows from duals of these (scaled) rows."""
        return self.row_scale * np.asarray(lam) / self.obj_scale

    def max_violation(self, x: np.ndarray) -> float:
        """Largest ``(A x - b)_i`` over rows, in the original row units (>= 0)."""
        residual = (self.A @ x - self.b) / self.row_scale
        return float(max(0.0, residual.max(initial=0.0)))


def standardize(
    c: np.ndarray,
    A_ub: np.ndarray | None = None,
    b_ub: np.ndarray | None = None,
    A_ge: np.ndarray | None = None,
    b_ge: np.ndarray | None = None,
    A_eq: np.ndarray | None = None,
    b_eq: np.ndarray | None = None,
    lb: np.ndarray | float | None = 0.0,
    ub: np.ndarray | float | None = None,
    name: str = "",
) -> LP:
    """``min c^T x`` over the given rows and bounds, as ``A x <= b``.

    Parameters
    ----------
    c : ndarray
        ``[n]`` objective.
    A_ub, b_ub, A_ge, b_ge, A_eq, b_eq : ndarray, optional
        ``<=``, ``>=`` and ``=`` rows.
    lb, ub : ndarray or float, optional
        Variable bounds (``None`` or infinite: no bound). Default ``x >= 0``.
    name : str

    Returns
    -------
    LP

    Raises
    ------
    ValueError
        On shape mismatches, a row block given without its right-hand side, or
        ``lb > ub``.
    """
    c = np.asarray(c, dtype=np.float64)
    if c.ndim != 1 or c.size == 0:
        raise ValueError(f"c must be a non-empty vector, got shape {c.shape}")
    n = c.size
    rows: list[np.ndarray] = []
    rhs: list[np.ndarray] = []
    kinds: list[str] = []

    def add(label: str, A: np.ndarray | None, b: np.ndarray | None) -> None:
        if (A is None) != (b is None):
            raise ValueError(f"A_{label} and b_{label} must be given together")
        if A is None:
            return
        A = np.atleast_2d(np.asarray(A, dtype=np.float64))
        b = np.atleast_1d(np.asarray(b, dtype=np.float64))
        if A.shape[1] != n or b.shape != (A.shape[0],):
            raise ValueError(
                f"A_{label} must be [k, {n}] with b_{label} [k], got {A.shape} and "
                f"{b.shape}"
            )
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
    lower = np.broadcast_to(
        np.asarray(-np.inf if lb is None else lb, dtype=np.float64), (n,)
    )
    upper = np.broadcast_to(
        np.asarray(np.inf if ub is None else ub, dtype=np.float64), (n,)
    )
    if np.any(lower > upper):
        raise ValueError("lb must not exceed ub")
    eye = np.eye(n)
    has_upper, has_lower = np.isfinite(upper), np.isfinite(lower)
    if has_upper.any():
        rows.append(eye[has_upper])
        rhs.append(upper[has_upper])
        kinds.extend(["upper"] * int(has_upper.sum()))
    if has_lower.any():
        rows.append(-eye[has_lower])
        rhs.append(-lower[has_lower])
        kinds.extend(["lower"] * int(has_lower.sum()))
    if not rows:
        raise ValueError("the LP has no constraints and no finite bounds")
    return LP(np.vstack(rows), np.concatenate(rhs), c, row_kind=tuple(kinds), name=name)


def scale(lp: LP) -> LP:
    """Divide each row ``[A_i, b_i]`` and ``c`` by their largest magnitudes.

    The factors multiply those already in ``lp`` (scaling twice is a no-op up
    to rounding).
    """
    row_max = np.maximum(np.abs(lp.A).max(axis=1), np.abs(lp.b))
    row_factor = 1.0 / np.where(row_max > 0, row_max, 1.0)
    c_max = float(np.abs(lp.c).max())
    c_factor = 1.0 / c_max if c_max > 0 else 1.0
    return replace(
        lp,
        A=lp.A * row_factor[:, None],
        b=lp.b * row_factor,
        c=lp.c * c_factor,
        row_scale=lp.row_scale * row_factor,
        obj_scale=lp.obj_scale * c_factor,
    )


def kkt_residuals(lp: LP, x: np.ndarray, lam: np.ndarray) -> dict[str, float]:
    """Largest primal, dual, stationarity and slackness residuals of ``(x, lam)``.

    In the units of ``lp`` (scaled if it is); the duality gap is
    ``|c^T x + b^T lam|``.
    """
    slack = lp.A @ x - lp.b
    return {
        "primal": float(np.maximum(slack, 0.0).max(initial=0.0)),
        "dual": float(np.maximum(-lam, 0.0).max(initial=0.0)),
        "stationarity": float(np.abs(lp.c + lp.A.T @ lam).max()),
        "complementary_slackness": float(np.abs(lam * slack).max()),
        "duality_gap": float(abs(lp.c @ x + lp.b @ lam)),
    }
