"""A user's LP as given (arrays or an MPS file), and its map to the package's form.

:class:`Problem` holds an LP in the row-bounds form solvers read and write
(HiGHS's, the MPS format's)::

    min (or max)  c^T x + offset
    s.t.          row_lower <= A x <= row_upper,   lb <= x <= ub

built from SciPy-style arrays (:meth:`Problem.from_arrays`, the arguments of
``scipy.optimize.linprog``) or read from an MPS file with HiGHS
(:meth:`Problem.from_mps`). :meth:`Problem.to_lp` maps it to the scaled
standard form every model and the PDHG solver take (``min c^T x  s.t.  A x <=
b,  lb <= x <= ub``: a finite upper row bound gives a row ``A_i x <= u_i``, a
finite lower one a row ``-A_i x <= -l_i``, an equality both; a maximization
negates ``c``), and :meth:`Problem.row_duals` maps the standard form's duals
``lambda >= 0`` back to one dual per user row, as a sensitivity ``dz/d(bound)``
(the convention of SciPy's ``marginals`` and HiGHS's ``row_dual``): ``y_i =
lambda_lower_i - lambda_upper_i`` for a minimization, negated for a
maximization.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import highspy
import numpy as np
import scipy.sparse as sp

from kkt_nets.data.lp import LP, scale
from kkt_nets.data.solve import new_highs

Bounds = tuple[float | None, float | None] | Sequence[tuple[float | None, float | None]]
"""``(lb, ub)`` for every variable, or one pair per variable; ``None``: unbounded."""


def _matrix(label: str, A: Any, n: int) -> sp.csr_array:
    """``A`` as a float64 CSR array of ``n`` columns with finite entries."""
    if sp.issparse(A):
        matrix = sp.csr_array(A, dtype=np.float64)
    else:
        dense = np.asarray(A, dtype=np.float64)
        if dense.ndim == 1 and dense.size == n:
            dense = dense[None, :]
        if dense.ndim != 2:
            raise ValueError(f"{label} must be a 2-D matrix, got shape {dense.shape}")
        matrix = sp.csr_array(dense)
    if matrix.shape[1] != n:
        raise ValueError(
            f"{label} must have {n} columns (the length of c), got {matrix.shape}"
        )
    if not np.all(np.isfinite(matrix.data)):
        raise ValueError(f"{label} holds non-finite values (NaN or inf)")
    return matrix


def _vector(label: str, b: Any, size: int) -> np.ndarray:
    """``b`` as a finite float64 vector of ``size`` entries."""
    vector = np.asarray(b, dtype=np.float64).reshape(-1)
    if vector.shape != (size,):
        raise ValueError(f"{label} must have {size} entries, got shape {vector.shape}")
    if not np.all(np.isfinite(vector)):
        raise ValueError(f"{label} holds non-finite values (NaN or inf)")
    return vector


def _vector_with_inf(label: str, values: Any, size: int) -> np.ndarray:
    """A float64 vector of ``size`` entries that may be infinite but not NaN."""
    vector = np.asarray(values, dtype=np.float64).reshape(-1)
    if vector.shape != (size,) or np.any(np.isnan(vector)):
        raise ValueError(f"{label} must be {size} numbers (no NaN), got {vector.shape}")
    return vector


def _bounds(bounds: Bounds | None, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``linprog``'s ``bounds`` as ``lb``, ``ub`` vectors (infinite where None)."""
    if bounds is None:
        bounds = (None, None)
    pairs = np.asarray(bounds, dtype=object)
    if pairs.shape == (2,):
        pairs = np.tile(pairs, (n, 1))
    if pairs.shape != (n, 2):
        raise ValueError(
            f"bounds must be one (lb, ub) pair or {n} pairs, got shape {pairs.shape}"
        )
    lb = np.array([-np.inf if v is None else float(v) for v in pairs[:, 0]])
    ub = np.array([np.inf if v is None else float(v) for v in pairs[:, 1]])
    if np.any(np.isnan(lb)) or np.any(np.isnan(ub)):
        raise ValueError("bounds hold NaN (use None or inf for no bound)")
    if np.any(lb > ub):
        j = int(np.argmax(lb > ub))
        raise ValueError(f"bounds: lb > ub for variable {j} ({lb[j]} > {ub[j]})")
    if np.any(lb == np.inf) or np.any(ub == -np.inf):
        raise ValueError("bounds: lb must be < inf and ub > -inf")
    return lb, ub


@dataclass(frozen=True)
class Problem:
    """An LP in row-bounds form (see the module doc).

    Attributes
    ----------
    c : ndarray
        ``[n]`` objective.
    A : scipy.sparse.csr_array
        ``[rows, n]`` constraint matrix.
    row_lower, row_upper : ndarray
        ``[rows]`` row bounds (``-inf`` / ``inf`` where absent).
    lb, ub : ndarray
        ``[n]`` variable bounds.
    offset : float
        Constant added to the objective.
    maximize : bool
        Maximize instead of minimize.
    name : str
    """

    c: np.ndarray
    A: sp.csr_array
    row_lower: np.ndarray
    row_upper: np.ndarray
    lb: np.ndarray
    ub: np.ndarray
    offset: float = 0.0
    maximize: bool = False
    name: str = ""
    _rows: tuple[np.ndarray, np.ndarray] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        c = np.asarray(self.c, dtype=np.float64)
        if c.ndim != 1 or c.size == 0:
            raise ValueError(f"c must be a non-empty vector, got shape {c.shape}")
        if not np.all(np.isfinite(c)):
            raise ValueError("c holds non-finite values (NaN or inf)")
        A = _matrix("A", self.A, c.size)
        lower = _vector_with_inf("row_lower", self.row_lower, A.shape[0])
        upper = _vector_with_inf("row_upper", self.row_upper, A.shape[0])
        if np.any(lower > upper):
            raise ValueError(f"row {int(np.argmax(lower > upper))} has lower > upper")
        lb = _vector_with_inf("lb", self.lb, c.size)
        ub = _vector_with_inf("ub", self.ub, c.size)
        if np.any(lb > ub) or np.any(lb == np.inf) or np.any(ub == -np.inf):
            j = int(np.argmax((lb > ub) | (lb == np.inf) | (ub == -np.inf)))
            raise ValueError(f"variable {j} has bounds [{lb[j]}, {ub[j]}]: empty")
        upper_rows = np.flatnonzero(np.isfinite(upper))
        lower_rows = np.flatnonzero(np.isfinite(lower))
        if upper_rows.size + lower_rows.size == 0:
            raise ValueError("the LP has no constraints (every row is free)")
        for label, value in (("c", c), ("A", A), ("row_lower", lower)):
            object.__setattr__(self, label, value)
        object.__setattr__(self, "row_upper", upper)
        object.__setattr__(self, "lb", lb)
        object.__setattr__(self, "ub", ub)
        object.__setattr__(self, "_rows", (upper_rows, lower_rows))

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, variables)``."""
        return self.A.shape

    @classmethod
    def from_arrays(
        cls,
        c: Any,
        A_ub: Any = None,
        b_ub: Any = None,
        A_eq: Any = None,
        b_eq: Any = None,
        bounds: Bounds | None = (0, None),
        name: str = "",
    ) -> Problem:
        """``min c^T x  s.t.  A_ub x <= b_ub,  A_eq x = b_eq``, ``linprog``'s bounds.

        Parameters
        ----------
        c : array_like
            ``[n]`` objective.
        A_ub, A_eq : array_like or sparse matrix, optional
            Inequality and equality rows (dense or SciPy sparse).
        b_ub, b_eq : array_like, optional
            Their right-hand sides.
        bounds : (lb, ub) or sequence of (lb, ub), optional
            As ``scipy.optimize.linprog`` (default ``(0, None)``: ``x >= 0``).
        name : str

        Returns
        -------
        Problem
            Rows: the ``A_ub`` rows, then the ``A_eq`` rows.

        Raises
        ------
        ValueError
            On a non-finite entry, mismatched shapes, a matrix without its
            right-hand side, ``lb > ub``, or no rows at all.
        """
        c = np.asarray(c, dtype=np.float64)
        n = c.size if c.ndim == 1 else -1
        if n < 1:
            raise ValueError(f"c must be a non-empty vector, got shape {c.shape}")
        if not np.all(np.isfinite(c)):
            raise ValueError("c holds non-finite values (NaN or inf)")
        blocks, lower, upper = [], [], []
        for label, A, b in (("ub", A_ub, b_ub), ("eq", A_eq, b_eq)):
            if (A is None) != (b is None):
                raise ValueError(f"A_{label} and b_{label} must be given together")
            if A is None:
                continue
            matrix = _matrix(f"A_{label}", A, n)
            rhs = _vector(f"b_{label}", b, matrix.shape[0])
            blocks.append(matrix)
            upper.append(rhs)
            lower.append(np.full(rhs.size, -np.inf) if label == "ub" else rhs)
        if not blocks:
            raise ValueError("give A_ub, b_ub and/or A_eq, b_eq: the LP has no rows")
        lb, ub = _bounds(bounds, n)
        return cls(
            c,
            sp.vstack(blocks, format="csr"),
            np.concatenate(lower),
            np.concatenate(upper),
            lb,
            ub,
            name=name,
        )

    @classmethod
    def from_mps(cls, path: str | Path) -> Problem:
        """Read an (M)MPS file with HiGHS.

        Raises
        ------
        ValueError
            If the file is missing or HiGHS cannot read it (names the file), or
            the model has integer variables (an LP solver would silently solve
            the relaxation).
        """
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"MPS file {path} not found")
        highs = new_highs()
        if highs.readModel(str(path)) == highspy.HighsStatus.kError:
            raise ValueError(f"HiGHS cannot read {path} as an MPS or LP model file")
        model = highs.getLp()
        integrality = np.asarray(model.integrality_)
        if integrality.size and np.any(integrality != 0):
            raise ValueError(
                f"{path} has integer variables: kkt-nets solves LPs (drop the "
                "integrality markers to solve the relaxation)"
            )
        matrix = model.a_matrix_
        rowwise = matrix.format_ == highspy.MatrixFormat.kRowwise
        A = (sp.csr_array if rowwise else sp.csc_array)(
            (matrix.value_, matrix.index_, matrix.start_),
            shape=(model.num_row_, model.num_col_),
        )

        def bound(values: Any) -> np.ndarray:
            array = np.array(values, dtype=np.float64)
            array[array >= highspy.kHighsInf] = np.inf
            array[array <= -highspy.kHighsInf] = -np.inf
            return array

        return cls(
            np.asarray(model.col_cost_, dtype=np.float64),
            sp.csr_array(A),
            bound(model.row_lower_),
            bound(model.row_upper_),
            bound(model.col_lower_),
            bound(model.col_upper_),
            offset=float(model.offset_),
            maximize=model.sense_ == highspy.ObjSense.kMaximize,
            name=path.stem,
        )

    def write_mps(self, path: str | Path) -> Path:
        """Write the problem as an MPS file with HiGHS.

        Returns
        -------
        Path
        """
        model = highspy.HighsLp()
        model.num_col_, model.num_row_ = self.A.shape[1], self.A.shape[0]
        model.col_cost_ = self.c
        model.col_lower_, model.col_upper_ = self.lb, self.ub
        model.row_lower_, model.row_upper_ = self.row_lower, self.row_upper
        model.offset_ = self.offset
        model.sense_ = (
            highspy.ObjSense.kMaximize if self.maximize else highspy.ObjSense.kMinimize
        )
        csc = sp.csc_array(self.A)
        matrix = model.a_matrix_
        matrix.format_ = highspy.MatrixFormat.kColwise
        matrix.num_col_, matrix.num_row_ = self.A.shape[1], self.A.shape[0]
        matrix.start_, matrix.index_, matrix.value_ = csc.indptr, csc.indices, csc.data
        highs = new_highs()
        highs.passModel(model)
        if highs.writeModel(str(path)) == highspy.HighsStatus.kError:
            raise ValueError(f"HiGHS cannot write {path}")
        return Path(path)

    def to_lp(self) -> LP:
        """The scaled standard form ``min c^T x  s.t.  A x <= b,  lb <= x <= ub``.

        Upper-bounded rows first (kind ``"ub"``, or ``"eq+"`` for equalities),
        then lower-bounded ones negated (``"ge"`` / ``"eq-"``); ``c`` negated
        for a maximization; the offset is left out (added back by
        :meth:`objective`).
        """
        upper_rows, lower_rows = self._rows
        equal = self.row_lower == self.row_upper
        A = sp.vstack([self.A[upper_rows], -self.A[lower_rows]], format="csr")
        b = np.concatenate([self.row_upper[upper_rows], -self.row_lower[lower_rows]])
        kinds = [("eq+" if equal[i] else "ub") for i in upper_rows] + [
            ("eq-" if equal[i] else "ge") for i in lower_rows
        ]
        sign = -1.0 if self.maximize else 1.0
        lp = LP(
            A, b, sign * self.c, row_kind=tuple(kinds), name=self.name,
            lb=self.lb, ub=self.ub,
        )  # fmt: skip
        return scale(lp)

    def objective(self, value: float) -> float:
        """The user's objective from the standard form's (unscaled) ``c^T x``."""
        return (-value if self.maximize else value) + self.offset

    def row_duals(self, lam: np.ndarray) -> np.ndarray:
        """One dual per user row from the standard form's unscaled ``lambda``.

        Parameters
        ----------
        lam : ndarray
            Duals of the rows of :meth:`to_lp` in original units
            (``LP.unscale_dual``).

        Returns
        -------
        ndarray
            ``[rows]`` sensitivities ``dz/d(row bound)`` of the user's objective.
        """
        upper_rows, lower_rows = self._rows
        duals = np.zeros(self.A.shape[0])
        np.subtract.at(duals, upper_rows, lam[: upper_rows.size])
        np.add.at(duals, lower_rows, lam[upper_rows.size :])
        return -duals if self.maximize else duals
