"""Variables, factors and the factor graph, compiled once into an immutable plan.

The model is ``p_theta(x) ∝ exp(sum_f theta_f[x_f])``: a factor's table entry is
*added* to the log-probability (higher theta, more probable). Every module of the
package keeps this sign convention.

A :class:`FactorGraph` is the user-facing description. Building one validates it
and compiles it into a :class:`Plan`: factor tables stacked by ``(order, shape)``
into groups, flat integer "wiring" arrays that locate every factor cell inside the
concatenation of those groups, and a graph coloring in which the variables of one
factor always get distinct colors (so a color class can be resampled at once).
The hot path (energy, samplers, moment estimation) only ever sees the plan and the
parameters; the parameters are arguments, so one compilation serves a whole fit.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from jax_smm.checks import (
    INT32_MAX,
    as_float_array,
    check_fits_in_memory,
    check_float32_interval,
    check_int,
    check_real,
    is_integer,
)

VariableKind = Literal["categorical", "bounded_continuous"]
MAX_ORDER = 3


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


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class Plan:
    """The compiled, immutable description the hot path works on.

    Array fields are pytree leaves; every other field is static and hashable, so
    an equal plan built anew neither retraces nor breaks ``jit``.

    Attributes
    ----------
    group_shapes : tuple of tuple of int
        Table shape of each factor group (factors stacked by order and shape).
    group_sizes : tuple of int
        Number of factors in each group.
    cards : tuple of int
        Cardinality (states or bins) of every variable.
    max_card : int
        Largest cardinality.
    cat_vars, cont_vars : tuple of int
        Variable ids stored in ``state["cat"]`` and ``state["cont"]``, in order.
    cont_low, cont_high : tuple of float
        Bounds of the continuous variables, in ``cont_vars`` order.
    num_colors, color_size : int
        Number of color classes and the padded size of each.
    pair_degree, triple_degree, unary_degree : int
        Padded number of pair, triple and unary incidences per variable.
    pair_prefix, triple_prefix : tuple of int
        Per incidence slot ``d``: in every color block, the rows past
        ``prefix[d]`` have no real incidence in slot ``d`` (rows are ordered by
        decreasing degree inside a color), so the sampler skips them.
    factor_vars : int32[F + 1, 3]
        Variables of every factor in plan order (padded with 0); the extra last
        factor is padding.
    factor_strides : int32[F + 1, 3]
        Row-major strides of each factor's cells (0 for padding).
    factor_offset : int32[F + 1]
        Position of each factor's first cell in the flat parameter vector; the
        padding factor points at cell ``P``, an appended zero.
    var_factors : int32[n, A]
        Plan indices of the factors adjacent to each variable (``F`` = padding).
    row_of_var : int32[n]
        Row of every variable in the color-blocked sampler layout.
    var_of_row : int32[R]
        Variable of each row (``n`` for padding rows).
    unary_cells : int32[R, D1, K]
        Flat cell of each unary incidence of a row, per state (``P`` = zero).
    pair_rows : int32[R, D2]
        Row of the other variable of each pair incidence.
    pair_cells : int32[R, D2, K, K]
        Flat cell ``[state of row, state of other]`` of each pair incidence.
    triple_rows : int32[R, D3, 2]
        Rows of the two other variables of each triple incidence.
    triple_cells : int32[R, D3, K, K, K]
        Flat cell ``[state of row, state of first, state of second]``.
    state_mask : float32[R, K]
        0 for valid states, ``-inf`` for padding states of each row.
    """

    group_shapes: tuple[tuple[int, ...], ...] = field(metadata={"static": True})
    group_sizes: tuple[int, ...] = field(metadata={"static": True})
    cards: tuple[int, ...] = field(metadata={"static": True})
    max_card: int = field(metadata={"static": True})
    cat_vars: tuple[int, ...] = field(metadata={"static": True})
    cont_vars: tuple[int, ...] = field(metadata={"static": True})
    cont_low: tuple[float, ...] = field(metadata={"static": True})
    cont_high: tuple[float, ...] = field(metadata={"static": True})
    num_colors: int = field(metadata={"static": True})
    color_size: int = field(metadata={"static": True})
    pair_degree: int = field(metadata={"static": True})
    triple_degree: int = field(metadata={"static": True})
    unary_degree: int = field(metadata={"static": True})
    pair_prefix: tuple[int, ...] = field(metadata={"static": True})
    triple_prefix: tuple[int, ...] = field(metadata={"static": True})
    factor_vars: jax.Array
    factor_strides: jax.Array
    factor_offset: jax.Array
    var_factors: jax.Array
    row_of_var: jax.Array
    var_of_row: jax.Array
    unary_cells: jax.Array
    pair_rows: jax.Array
    pair_cells: jax.Array
    triple_rows: jax.Array
    triple_cells: jax.Array
    state_mask: jax.Array

    @property
    def num_vars(self) -> int:
        """Number of variables."""
        return len(self.cards)

    @property
    def num_factors(self) -> int:
        """Number of factors."""
        return sum(self.group_sizes)

    @property
    def num_params(self) -> int:
        """Length of the flat parameter vector (all factor cells)."""
        return sum(
            size * math.prod(shape)
            for size, shape in zip(self.group_sizes, self.group_shapes, strict=True)
        )

    @property
    def num_rows(self) -> int:
        """Rows of the color-blocked sampler layout."""
        return self.num_colors * self.color_size


def flatten_theta(theta_groups: Sequence[jax.Array]) -> jax.Array:
    """Concatenate stacked group tables into the flat parameter vector.

    Parameters
    ----------
    theta_groups : sequence of arrays
        One ``(F_g, *shape_g)`` array per factor group.

    Returns
    -------
    jax.Array
        ``float32[P]``, the cells of every factor in plan order.
    """
    return jnp.concatenate([jnp.ravel(t) for t in theta_groups])


def unflatten_theta(plan: Plan, flat: jax.Array) -> tuple[jax.Array, ...]:
    """Split a flat vector (parameters or moments) into stacked group tables."""
    out, start = [], 0
    for size, shape in zip(plan.group_sizes, plan.group_shapes, strict=True):
        stop = start + size * math.prod(shape)
        out.append(flat[start:stop].reshape((size, *shape)))
        start = stop
    return tuple(out)


def dsatur_coloring(neighbors: Sequence[set[int]]) -> list[int]:
    """Color a graph greedily by saturation degree (DSATUR).

    Parameters
    ----------
    neighbors : sequence of set of int
        Adjacency sets of an undirected graph.

    Returns
    -------
    list of int
        A color per vertex; adjacent vertices get different colors.
    """
    n = len(neighbors)
    colors = [-1] * n
    seen: list[set[int]] = [set() for _ in range(n)]
    heap = [(0, -len(neighbors[v]), v) for v in range(n)]
    heapq.heapify(heap)
    while heap:
        neg_sat, _, vertex = heapq.heappop(heap)
        if colors[vertex] >= 0 or -neg_sat != len(seen[vertex]):
            continue  # stale entry: already colored or saturation has grown
        color = next(c for c in range(n) if c not in seen[vertex])
        colors[vertex] = color
        for u in neighbors[vertex]:
            if colors[u] < 0 and color not in seen[u]:
                seen[u].add(color)
                heapq.heappush(heap, (-len(seen[u]), -len(neighbors[u]), u))
    return colors


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
        self.plan, self._plan_order = _compile(self.variables, factors)
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


def plan_bytes(num_rows: int, max_card: int, degrees: dict[int, int]) -> int:
    """Bytes of a plan's padded incidence tables and of their gathered values.

    Parameters
    ----------
    num_rows : int
        Rows of the color-blocked layout.
    max_card : int
        Largest cardinality ``K`` (every table is padded to it).
    degrees : dict of int to int
        Incidence slots per row for orders 1, 2 and 3.

    Returns
    -------
    int
        ``int32`` cells plus the ``float32`` tables a sampler gathers from them.
    """
    per_row = sum(d * (max_card**o + o) for o, d in degrees.items()) + max_card
    return 2 * 4 * num_rows * per_row


def _compile(
    variables: Sequence[Variable], factors: Sequence[Factor]
) -> tuple[Plan, tuple[tuple[int, ...], ...]]:
    """Compile variables and factors into a :class:`Plan` (host-side, NumPy)."""
    n = len(variables)
    cards = tuple(v.cardinality for v in variables)
    k = max(cards)

    # Groups by (order, shape), in order of first appearance.
    groups: dict[tuple[int, ...], list[int]] = {}
    for pos, f in enumerate(factors):
        groups.setdefault(f.table_shape, []).append(pos)
    plan_order = tuple(tuple(m) for m in groups.values())
    order = [pos for members in plan_order for pos in members]
    num_f = len(order)
    num_cells = sum(math.prod(f.table_shape) for f in factors)
    if num_cells >= INT32_MAX:
        raise ValueError(
            f"factors: the graph has {num_cells} factor cells; the int32 wiring "
            f"holds at most {INT32_MAX - 1}"
        )

    factor_vars = np.zeros((num_f + 1, MAX_ORDER), np.int32)
    factor_strides = np.zeros((num_f + 1, MAX_ORDER), np.int32)
    factor_offset = np.zeros(num_f + 1, np.int32)
    offset = 0
    for i, pos in enumerate(order):
        f = factors[pos]
        strides = np.cumprod((*f.table_shape[1:], 1)[::-1])[::-1]
        factor_vars[i, : f.order] = f.var_ids
        factor_strides[i, : f.order] = strides
        factor_offset[i] = offset
        offset += math.prod(f.table_shape)
    num_params = offset
    zero_cell = num_params  # index of an appended 0.0 used for padding
    factor_offset[num_f] = zero_cell

    # Adjacency (plan indices) and the interaction graph.
    adjacent: list[list[int]] = [[] for _ in range(n)]
    neighbors: list[set[int]] = [set() for _ in range(n)]
    for i, pos in enumerate(order):
        scope = factors[pos].var_ids
        for v in scope:
            adjacent[v].append(i)
            neighbors[v].update(u for u in scope if u != v)
    degree = max(1, max(len(a) for a in adjacent))
    var_factors = np.full((n, degree), num_f, np.int32)
    for v, adj in enumerate(adjacent):
        var_factors[v, : len(adj)] = adj

    # Color classes, each padded to the largest, laid out as row blocks; inside
    # a block, rows go by decreasing (pair, triple) degree so the sampler can
    # stop each incidence slot at the last row that has one.
    colors = dsatur_coloring(neighbors)
    num_colors = max(colors) + 1
    order_degree = [[0, 0] for _ in range(n)]
    for pos in order:
        if factors[pos].order > 1:
            for v in factors[pos].var_ids:
                order_degree[v][factors[pos].order - 2] += 1
    members_of = [
        sorted(
            (v for v in range(n) if colors[v] == c),
            key=lambda v: (-sum(order_degree[v]), -order_degree[v][0], v),
        )
        for c in range(num_colors)
    ]
    color_size = max(len(m) for m in members_of)
    num_rows = num_colors * color_size
    row_of_var = np.zeros(n, np.int32)
    var_of_row = np.full(num_rows, n, np.int32)
    for c, members in enumerate(members_of):
        for j, v in enumerate(members):
            row_of_var[v] = c * color_size + j
            var_of_row[c * color_size + j] = v

    # Incidences: for each variable, the cells of each adjacent factor oriented so
    # that the variable's own state is the first axis.
    incid: dict[int, list[list[tuple[tuple[int, ...], np.ndarray]]]] = {
        1: [[] for _ in range(n)],
        2: [[] for _ in range(n)],
        3: [[] for _ in range(n)],
    }
    for i, pos in enumerate(order):
        f = factors[pos]
        cells = factor_offset[i] + np.arange(math.prod(f.table_shape)).reshape(
            f.table_shape
        )
        for axis, v in enumerate(f.var_ids):
            others = tuple(u for u in f.var_ids if u != v)
            perm = (axis, *(a for a in range(f.order) if a != axis))
            incid[f.order][v].append((others, np.transpose(cells, perm)))

    degrees = {o: max(len(lst) for lst in incid[o]) for o in (1, 2, 3)}
    degrees[1] = max(degrees[1], 1)  # the sampler always reads a unary slot
    check_fits_in_memory(
        f"the graph's compiled sampler tables ({num_rows} rows, incidence slots "
        f"{degrees[1]} unary x K, {degrees[2]} pair x K^2, {degrees[3]} triple x "
        f"K^3, K = {k}: the largest cardinality pads every table)",
        plan_bytes(num_rows, k, degrees),
    )

    def padded(order_: int) -> tuple[int, np.ndarray, np.ndarray]:
        """Rows and cells of every incidence of one order; nothing if unused."""
        deg = degrees[order_]
        rows = np.zeros((num_rows, deg, max(order_ - 1, 1)), np.int32)
        cells = np.full((num_rows, deg) + (k,) * order_, zero_cell, np.int32)
        for v in range(n):
            r = row_of_var[v]
            for d, (others, table) in enumerate(incid[order_][v]):
                rows[r, d, : len(others)] = [row_of_var[u] for u in others]
                cells[(r, d, *(slice(0, s) for s in table.shape))] = table
        return deg, rows, cells

    unary_degree, _, unary_cells = padded(1)
    pair_degree, pair_rows, pair_cells = padded(2)
    triple_degree, triple_rows, triple_cells = padded(3)

    def prefix(order_: int, degree: int) -> tuple[int, ...]:
        """Per slot, the largest end (over color blocks) of its real rows."""
        ends = [0] * degree
        for members in members_of:
            for j, v in enumerate(members):
                for d in range(order_degree[v][order_ - 2]):
                    ends[d] = max(ends[d], j + 1)
        return tuple(ends)

    state_mask = np.full((num_rows, k), -np.inf, np.float32)
    state_mask[:, 0] = 0.0  # padding rows hold state 0
    for v in range(n):
        state_mask[row_of_var[v], : cards[v]] = 0.0

    cat_vars = tuple(i for i, v in enumerate(variables) if not v.is_continuous)
    cont_vars = tuple(i for i, v in enumerate(variables) if v.is_continuous)
    plan = Plan(
        group_shapes=tuple(groups),
        group_sizes=tuple(len(m) for m in plan_order),
        cards=cards,
        max_card=k,
        cat_vars=cat_vars,
        cont_vars=cont_vars,
        cont_low=tuple(float(variables[i].low) for i in cont_vars),
        cont_high=tuple(float(variables[i].high) for i in cont_vars),
        num_colors=num_colors,
        color_size=color_size,
        pair_degree=pair_degree,
        triple_degree=triple_degree,
        unary_degree=unary_degree,
        pair_prefix=prefix(2, pair_degree),
        triple_prefix=prefix(3, triple_degree),
        factor_vars=jnp.asarray(factor_vars),
        factor_strides=jnp.asarray(factor_strides),
        factor_offset=jnp.asarray(factor_offset),
        var_factors=jnp.asarray(var_factors),
        row_of_var=jnp.asarray(row_of_var),
        var_of_row=jnp.asarray(var_of_row),
        unary_cells=jnp.asarray(unary_cells),
        pair_rows=jnp.asarray(pair_rows[..., 0]),
        pair_cells=jnp.asarray(pair_cells),
        triple_rows=jnp.asarray(triple_rows),
        triple_cells=jnp.asarray(triple_cells),
        state_mask=jnp.asarray(state_mask),
    )
    return plan, plan_order
