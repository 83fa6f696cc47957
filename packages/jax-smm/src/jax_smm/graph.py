"""Variables, factors and the factor graph, compiled once into an immutable plan.

The model is ``p_theta(x) ∝ exp(sum_f theta_f[x_f])``: a factor's table entry is
*added* to the log-probability (higher theta, more probable). Every module of the
package keeps this sign convention.

A :class:`FactorGraph` is the user-facing description. Building one validates it
and compiles it (:mod:`jax_smm.compile`) into a :class:`~jax_smm.compile.Plan`:
factor tables stacked by ``(order, shape)`` into groups, flat integer "wiring"
arrays that locate every factor cell inside the concatenation of those groups, and
a graph coloring in which the variables of one factor always get distinct colors
(so a color class can be resampled at once). The hot path (energy, samplers,
moment estimation) only ever sees the plan and the parameters; the parameters are
arguments, so one compilation serves a whole fit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from jax_smm.checks import (
    INT32_MAX,
    as_float_array,
    check_float32_interval,
    check_int,
    check_real,
    is_integer,
)
from jax_smm.compile import MAX_ORDER, Plan, compile_plan, unflatten_theta

VariableKind = Literal["categorical", "bounded_continuous"]


@dataclass(frozen=True)
class Variable:
    """A categorical or a bounded continuous variable.

    Parameters
    ----------
    name : str
        Human-readable name.
    kind : {"categorical", "bounded_continuous"}
        Categorical variables take states ``0 .. num_states - 1``; bounded
        continuous ones take real values in ``[low, high]``, discretized into
        ``num_bins`` equal-width bins for factor lookup.
    num_states : int, optional
        Number of states (categorical only, at least 2).
    low, high : float, optional
        Finite bounds with ``low < high`` (continuous only).
    num_bins : int, optional
        Number of equal-width bins (continuous only, at least 1).
    """

    name: str
    kind: VariableKind = "categorical"
    num_states: int | None = None
    low: float | None = None
    high: float | None = None
    num_bins: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise ValueError(f"Variable name must be a str, got {self.name!r}")
        where = f"Variable {self.name!r}"
        if self.kind == "categorical":
            object.__setattr__(
                self,
                "num_states",
                check_int(f"{where}: num_states", self.num_states, 2, INT32_MAX),
            )
        elif self.kind == "bounded_continuous":
            if self.low is None or self.high is None:
                raise ValueError(
                    f"{where}: low and high are required for a bounded_continuous "
                    "variable"
                )
            low = check_real(f"{where}: low", self.low)
            high = check_real(f"{where}: high", self.high)
            if low >= high:
                raise ValueError(
                    f"{where}: need finite low < high, got low={low!r}, high={high!r}"
                )
            check_float32_interval(where, low, high)
            object.__setattr__(self, "low", low)
            object.__setattr__(self, "high", high)
            object.__setattr__(
                self,
                "num_bins",
                check_int(f"{where}: num_bins", self.num_bins, 1, INT32_MAX),
            )
        else:
            raise ValueError(
                f"{where}: kind must be 'categorical' or 'bounded_continuous', got "
                f"{self.kind!r}"
            )

    @classmethod
    def categorical(cls, name: str, num_states: int) -> Variable:
        """Build a categorical variable with ``num_states`` states."""
        return cls(name=name, kind="categorical", num_states=num_states)

    @classmethod
    def continuous(cls, name: str, low: float, high: float, num_bins: int) -> Variable:
        """Build a bounded continuous variable on ``[low, high]``."""
        return cls(
            name=name, kind="bounded_continuous", low=low, high=high, num_bins=num_bins
        )

    @property
    def is_continuous(self) -> bool:
        """Whether the variable is bounded continuous."""
        return self.kind == "bounded_continuous"

    @property
    def cardinality(self) -> int:
        """Number of discrete states a factor table sees (states or bins)."""
        return int(self.num_bins if self.is_continuous else self.num_states)


@dataclass(frozen=True, eq=False)
class Factor:
    """A table factor over one to three variables.

    Parameters
    ----------
    id : int
        Identifier, unique within a graph; targets are keyed by it.
    var_ids : tuple of int
        The variables in scope (1 to 3, distinct), in table-axis order.
    theta : array_like
        Log-potential table: ``theta[x_i, x_j, ...]`` is added to the
        log-probability. Stored as a read-only ``float32`` NumPy array (the
        compiled plan holds the device copies).
    table_shape : tuple of int, optional
        Expected shape of ``theta``; defaults to ``theta.shape``. The graph checks
        it against the cardinalities of ``var_ids``.
    """

    id: int
    var_ids: tuple[int, ...]
    theta: np.ndarray
    table_shape: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", check_int("Factor id", self.id))
        if isinstance(self.var_ids, (str, bytes)) or not hasattr(
            self.var_ids, "__iter__"
        ):
            raise ValueError(
                f"Factor {self.id}: var_ids must be a sequence of variable ids, got "
                f"{self.var_ids!r}"
            )
        var_ids = tuple(
            check_int(f"Factor {self.id}: var_ids[{i}]", v, 0)
            for i, v in enumerate(self.var_ids)
        )
        if not 1 <= len(var_ids) <= MAX_ORDER:
            raise ValueError(
                f"Factor {self.id}: var_ids must hold 1 to {MAX_ORDER} variables, "
                f"got {len(var_ids)}"
            )
        if len(set(var_ids)) != len(var_ids):
            raise ValueError(f"Factor {self.id}: var_ids has repeats: {var_ids}")
        theta = as_float_array(f"Factor {self.id}: theta", self.theta, np.float32)
        theta.flags.writeable = False
        shape = tuple(
            check_int(f"Factor {self.id}: table_shape[{i}]", s, 1)
            for i, s in enumerate(self.table_shape or theta.shape)
        )
        if theta.shape != shape:
            raise ValueError(
                f"Factor {self.id}: theta shape {theta.shape} != table_shape {shape}"
            )
        if not np.all(np.isfinite(theta)):
            raise ValueError(f"Factor {self.id}: theta must be finite")
        if len(shape) != len(var_ids):
            raise ValueError(
                f"Factor {self.id}: table_shape {shape} has {len(shape)} axes for "
                f"{len(var_ids)} variables"
            )
        object.__setattr__(self, "var_ids", var_ids)
        object.__setattr__(self, "theta", theta)
        object.__setattr__(self, "table_shape", shape)

    @property
    def order(self) -> int:
        """Number of variables in scope."""
        return len(self.var_ids)


class FactorGraph:
    """A sparse factor graph over categorical and bounded continuous variables.

    A graph is a JAX pytree: its leaves are the compiled plan's arrays and the
    stacked factor tables (``theta_groups``); its static structure (variables
    and factor scopes) is hashable and compared by content. So a graph is an
    ordinary argument of a jitted function, ``jax.jit(energy)(graph, state)``,
    and graphs that differ only in their tables share one compilation. (Do not
    mark it static: the tables are arrays.) Inside a trace use ``plan`` and
    ``theta_groups``; ``factors`` and ``thetas`` need concrete tables.

    Parameters
    ----------
    variables : sequence of Variable
        The variables; a variable's id is its position.
    factors : sequence of Factor
        The factors, with unique ids and in-range, correctly shaped tables.

    Attributes
    ----------
    variables : tuple of Variable
    factors : tuple of Factor
    var_to_factors : list of list of int
        Factor ids adjacent to each variable.
    factor_to_vars : list of tuple of int
        Scope of each factor, in ``factors`` order.
    var_index : dict of int to tuple of (str, int)
        ``var_id -> ("cat", i)`` or ``("cont", i)``: where the variable lives in
        the state pytree.
    plan : Plan
        The compiled description used by every computation.
    theta_groups : tuple of jax.Array
        The factor tables stacked by group, the parameter pytree of a fit.
    """

    def __init__(
        self, variables: Sequence[Variable], factors: Sequence[Factor]
    ) -> None:
        self.variables = tuple(variables)
        factors = tuple(factors)
        if not self.variables:
            raise ValueError("variables must not be empty")
        for v in self.variables:
            if not isinstance(v, Variable):
                raise ValueError(f"variables must hold Variable objects, got {v!r}")
        for f in factors:
            if not isinstance(f, Factor):
                raise ValueError(f"factors must hold Factor objects, got {f!r}")
        n = len(self.variables)
        ids = [f.id for f in factors]
        if len(set(ids)) != len(ids):
            raise ValueError(f"factors: factor ids must be unique, got {ids}")
        for f in factors:
            bad = [v for v in f.var_ids if not 0 <= v < n]
            if bad:
                raise ValueError(
                    f"factors: factor {f.id} has var_ids {bad} out of range [0, {n})"
                )
            expected = tuple(self.variables[v].cardinality for v in f.var_ids)
            if f.table_shape != expected:
                raise ValueError(
                    f"factors: factor {f.id} has table_shape {f.table_shape}, but "
                    f"its variables have cardinalities {expected}"
                )
        self._factors: tuple[Factor, ...] | None = factors
        self._factor_ids = tuple(ids)
        self._table_shapes = tuple(f.table_shape for f in factors)
        self.factor_to_vars = [f.var_ids for f in factors]
        self.var_to_factors: list[list[int]] = [[] for _ in range(n)]
        for f in factors:
            for v in f.var_ids:
                self.var_to_factors[v].append(f.id)
        self.var_index: dict[int, tuple[str, int]] = {}
        counts = {"cat": 0, "cont": 0}
        for i, v in enumerate(self.variables):
            key = "cont" if v.is_continuous else "cat"
            self.var_index[i] = (key, counts[key])
            counts[key] += 1
        self._factor_pos = {f.id: i for i, f in enumerate(factors)}
        self._by_scope: dict[frozenset[int], int] = {}
        for i, f in enumerate(factors):
            self._by_scope.setdefault(frozenset(f.var_ids), i)
        self.plan, self._plan_order = compile_plan(self.variables, factors)
        order = [pos for members in self._plan_order for pos in members]
        self._plan_index = {ids[pos]: i for i, pos in enumerate(order)}
        self.theta_groups = self._stack(f.theta for f in factors)
        self._structure = _GraphStructure(self)

    @property
    def factors(self) -> tuple[Factor, ...]:
        """The factors, carrying the current tables (built on first access)."""
        if self._factors is None:
            tables = self.unstack_tables(self.theta_groups)
            self._factors = tuple(
                Factor(fid, scope, tables[fid], shape)
                for fid, scope, shape in zip(
                    self._factor_ids,
                    self.factor_to_vars,
                    self._table_shapes,
                    strict=True,
                )
            )
        return self._factors

    @property
    def factor_ids(self) -> tuple[int, ...]:
        """Factor ids, in ``factors`` order (no table is built)."""
        return self._factor_ids

    @property
    def num_vars(self) -> int:
        """Number of variables."""
        return len(self.variables)

    @property
    def n_cat(self) -> int:
        """Number of categorical variables."""
        return len(self.plan.cat_vars)

    @property
    def n_cont(self) -> int:
        """Number of bounded continuous variables."""
        return len(self.plan.cont_vars)

    def factor(self, factor_id: int) -> Factor:
        """Return the factor with id ``factor_id``."""
        return self.factors[self.factor_position(factor_id)]

    def factor_position(self, factor_id: int) -> int:
        """Position of factor ``factor_id`` in ``factors``."""
        if not is_integer(factor_id) or int(factor_id) not in self._factor_pos:
            raise ValueError(f"factor_id {factor_id!r} is not in the graph")
        return self._factor_pos[int(factor_id)]

    def table_shape(self, factor_id: int) -> tuple[int, ...]:
        """Table shape of factor ``factor_id`` (no table is built)."""
        return self._table_shapes[self.factor_position(factor_id)]

    def factor_over(self, var_ids: Sequence[int]) -> Factor | None:
        """The (first) factor whose scope is exactly ``var_ids``, in any order."""
        pos = self._by_scope.get(frozenset(int(v) for v in var_ids))
        return None if pos is None else self.factors[pos]

    def cell_range(self, factor_id: int) -> tuple[int, int]:
        """Start and stop of factor ``factor_id``'s cells in the flat vector."""
        shape = self.table_shape(factor_id)
        start = int(self.plan.factor_offset[self._plan_index[int(factor_id)]])
        return start, start + math.prod(shape)

    def _stack(self, tables) -> tuple[jax.Array, ...]:
        """Stack per-factor tables (in ``factors`` order) into group arrays."""
        tables = list(tables)
        return tuple(
            jnp.asarray(np.stack([np.asarray(tables[i], np.float32) for i in members]))
            for members in self._plan_order
        )

    def unstack_tables(self, groups: Sequence[jax.Array]) -> dict[int, np.ndarray]:
        """Split group arrays (or a flat vector) into ``{factor_id: table}`` (NumPy)."""
        if not isinstance(groups, (tuple, list)):
            groups = unflatten_theta(self.plan, groups)
        out: dict[int, np.ndarray] = {}
        for members, group in zip(self._plan_order, groups, strict=True):
            group = np.asarray(group)
            for j, pos in enumerate(members):
                out[self._factor_ids[pos]] = group[j]
        return out

    @property
    def thetas(self) -> dict[int, np.ndarray]:
        """The current tables as a ``{factor_id: theta}`` dict."""
        return self.unstack_tables(self.theta_groups)

    def with_theta(self, theta_groups: Sequence[jax.Array]) -> FactorGraph:
        """Return a copy whose factors carry the given group tables.

        The compiled plan is shared, not rebuilt.

        Raises
        ------
        ValueError
            If the groups are not shaped like ``theta_groups`` or hold
            non-finite values.
        """
        groups = tuple(jnp.asarray(g, jnp.float32) for g in theta_groups)
        expected = [g.shape for g in self.theta_groups]
        if [g.shape for g in groups] != expected:
            raise ValueError(
                f"theta_groups must have shapes {expected}, got "
                f"{[g.shape for g in groups]}"
            )
        concrete = not any(isinstance(g, jax.core.Tracer) for g in groups)
        if concrete and not all(bool(jnp.all(jnp.isfinite(g))) for g in groups):
            raise ValueError("theta_groups must be finite")
        return self._replace(self.plan, groups)

    def _replace(self, plan: Plan, theta_groups: tuple[jax.Array, ...]) -> FactorGraph:
        """A graph of the same structure with another plan and tables (unchecked)."""
        new = object.__new__(FactorGraph)
        new.__dict__.update(self.__dict__)
        new.plan, new.theta_groups, new._factors = plan, theta_groups, None
        return new

    def __repr__(self) -> str:
        return (
            f"FactorGraph({self.num_vars} variables ({self.n_cat} categorical, "
            f"{self.n_cont} continuous), {len(self._factor_ids)} factors, "
            f"{self.plan.num_colors} colors)"
        )


class _GraphStructure:
    """The static part of a :class:`FactorGraph` pytree, compared by content.

    The key is the variables and every factor's id and scope (which fix the
    plan); its hash is computed once. ``prototype`` carries the host-side
    metadata an unflattened graph reuses.
    """

    __slots__ = ("hash", "key", "prototype")

    def __init__(self, graph: FactorGraph) -> None:
        self.key = (
            graph.variables,
            tuple(zip(graph._factor_ids, graph.factor_to_vars, strict=True)),
        )
        self.hash = hash(self.key)
        self.prototype = graph

    def __hash__(self) -> int:
        return self.hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _GraphStructure) and (
            self is other or (self.hash == other.hash and self.key == other.key)
        )

    def __repr__(self) -> str:
        variables, factors = self.key
        return f"GraphStructure({len(variables)} variables, {len(factors)} factors)"


jax.tree_util.register_pytree_node(
    FactorGraph,
    lambda g: ((g.plan, g.theta_groups), g._structure),
    lambda structure, children: structure.prototype._replace(*children),
)
