"""Target moments: factor marginal tables and linear moment constraints.

A fit matches two kinds of statistics:

* a factor's marginal table ``E[onehot(x_f)] = target_f`` (from explicit
  marginals or from samples); factors without a target keep their theta fixed;
* a linear constraint ``E[W(x_S)] = c`` with a fixed weight table ``W`` over a
  scope ``S`` and one learned multiplier ``lambda``: the factor over ``S`` gains
  ``lambda * W``. Probability, expectation and conditional statements become such
  constraints (e.g. ``P(x_i > t) = c`` is ``W = 1[bin > t]``).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jax_smm.checks import as_float_array
from jax_smm.compile import Plan
from jax_smm.features import (
    LinearFeature,
    LinearWiring,
    State,
    moments_from_bins,
    state_to_bins,
    validate_states,
    wire_linear_features,
)
from jax_smm.graph import FactorGraph

MARGINAL_TOLERANCE = 1e-4
CONSISTENCY_TOLERANCE = 1e-3


@dataclass(frozen=True)
class LinearConstraint:
    """``E[weights[x_S]] = target`` with one learned multiplier.

    Parameters
    ----------
    var_ids : tuple of int
        The scope ``S``; the graph needs a factor over exactly these variables.
    weights : array_like
        Weight table shaped by the cardinalities (states or bins) of ``S``.
    target : float
        The required expectation; it must lie strictly between the smallest and
        the largest weight for a finite multiplier to exist.
    name : str, optional
        Label used in error messages and history.
    """

    var_ids: tuple[int, ...]
    weights: np.ndarray
    target: float
    name: str = ""

    def __post_init__(self) -> None:
        feature = LinearFeature(self.var_ids, self.weights)
        object.__setattr__(self, "var_ids", feature.var_ids)
        object.__setattr__(self, "weights", feature.weights)
        target = float(self.target)
        if not np.isfinite(target):
            raise ValueError(f"constraint {self.name!r}: target must be finite")
        lo, hi = float(self.weights.min()), float(self.weights.max())
        if not lo <= target <= hi:
            raise ValueError(
                f"constraint {self.name!r}: target {target} is outside the range "
                f"[{lo}, {hi}] of its weights, so no distribution satisfies it"
            )
        object.__setattr__(self, "target", target)

    @property
    def feature(self) -> LinearFeature:
        """The constraint's feature ``W(x_S)``."""
        return LinearFeature(self.var_ids, self.weights)


@dataclass(frozen=True)
class Targets:
    """What a fit must match.

    Attributes
    ----------
    moments : dict of int to numpy.ndarray
        ``{factor_id: marginal table}`` for the factors being fitted.
    constraints : tuple of LinearConstraint
        Linear moment constraints.
    """

    moments: Mapping[int, np.ndarray] = field(default_factory=dict)
    constraints: tuple[LinearConstraint, ...] = ()


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class CompiledTargets:
    """Targets laid out on the flat parameter vector (what the jitted step sees).

    Attributes
    ----------
    values : float32[P]
        Target marginals (0 where a factor has no target).
    mask : float32[P]
        1 on the cells of targeted factors, 0 elsewhere.
    linear : LinearWiring
        Where each constraint's weights sit.
    linear_values : float32[m]
        Constraint targets.
    """

    values: jax.Array
    mask: jax.Array
    linear: LinearWiring
    linear_values: jax.Array


def table_tolerance(table: Any) -> float:
    """Tolerance on a marginal table's sum: ``MARGINAL_TOLERANCE`` or its dtype's eps.

    A float16 table of exact probabilities sums to 1 only within about its
    machine epsilon (each entry is rounded), so its tolerance is that epsilon.
    """
    dtype = getattr(table, "dtype", None)  # Python sequences: float64
    if dtype is not None and jnp.issubdtype(dtype, jnp.floating):
        return max(MARGINAL_TOLERANCE, float(jnp.finfo(dtype).eps))
    return MARGINAL_TOLERANCE


def checked_table(name: str, table: Any, shape: tuple[int, ...]) -> np.ndarray:
    """Validate a marginal table and return it as float32, renormalized to sum 1.

    Raises
    ------
    ValueError
        Naming ``name`` if the table is not numeric, not shaped ``shape``, has
        negative or non-finite entries, or does not sum to 1 (within
        :func:`table_tolerance`).
    """
    array = as_float_array(name, table, np.float64)
    tolerance = table_tolerance(table)
    if array.shape != shape:
        raise ValueError(f"{name}: shape {array.shape} != factor table_shape {shape}")
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        raise ValueError(f"{name}: entries must be finite and non-negative")
    total = float(array.sum())
    if abs(total - 1.0) > tolerance:
        raise ValueError(
            f"{name}: entries must sum to 1 (within {tolerance:.3g}), they sum to "
            f"{total:.6g}"
        )
    return (array / total).astype(np.float32)


def inconsistent_margins(
    graph: FactorGraph,
    tables: Mapping[int, np.ndarray],
    tolerance: float = CONSISTENCY_TOLERANCE,
) -> list[tuple[float, int, int, int]]:
    """Pairs of target tables whose margins of a shared variable disagree.

    Parameters
    ----------
    graph : FactorGraph
    tables : dict of int to numpy.ndarray
        Valid target tables (see :func:`checked_table`).
    tolerance : float
        Largest allowed max absolute difference between two margins.

    Returns
    -------
    list of (difference, variable, factor_id, other_factor_id)
        For every variable in the scope of two or more tables, each table whose
        margin of it differs from the first table's by more than
        ``tolerance``, largest first.
    """
    margins: dict[int, list[tuple[int, np.ndarray]]] = {}
    for factor_id, table in tables.items():
        scope = graph.factor_to_vars[graph.factor_position(factor_id)]
        for axis, v in enumerate(scope):
            others = tuple(a for a in range(len(scope)) if a != axis)
            margins.setdefault(v, []).append((factor_id, table.sum(axis=others)))
    found = []
    for v, tabs in margins.items():
        first_id, first = tabs[0]
        for factor_id, margin in tabs[1:]:
            diff = float(np.max(np.abs(margin - first)))
            if diff > tolerance:
                found.append((diff, v, first_id, factor_id))
    return sorted(found, reverse=True)


def build_targets_from_marginals(
    graph: FactorGraph,
    marginal_tables: Mapping[int, jax.Array],
    constraints: Sequence[LinearConstraint] = (),
) -> Targets:
    """Targets from explicit marginal tables.

    Parameters
    ----------
    graph : FactorGraph
    marginal_tables : dict of int to array
        ``{factor_id: table}``; each table has the factor's shape, is
        non-negative and sums to 1. Factors left out keep their theta.
    constraints : sequence of LinearConstraint, optional
        Additional linear moment constraints.

    Returns
    -------
    Targets

    Warns
    -----
    RuntimeWarning
        If two tables' margins of a shared variable disagree by more than
        ``CONSISTENCY_TOLERANCE`` plus twice the tables' rounding tolerance (see
        :func:`inconsistent_margins`).
    """
    tables = {
        int(factor_id): checked_table(
            f"marginal_tables[{factor_id}]", table, graph.table_shape(factor_id)
        )
        for factor_id, table in marginal_tables.items()
    }
    if not tables and not constraints:
        raise ValueError("marginal_tables and constraints are both empty")
    wire_linear_features(graph, [c.feature for c in constraints])  # validates
    rounding = max((table_tolerance(t) for t in marginal_tables.values()), default=0)
    conflicts = inconsistent_margins(
        graph, tables, CONSISTENCY_TOLERANCE + 2 * rounding
    )
    if conflicts:
        shown = "; ".join(
            f"factor {b}'s margin of variable {v} differs from factor {a}'s by "
            f"{diff:.3g}"
            for diff, v, a, b in conflicts[:5]
        )
        warnings.warn(
            f"marginal_tables are inconsistent ({len(conflicts)} conflicts): "
            f"{shown}. No distribution matches them all; the fit will end with "
            "errors on these factors.",
            RuntimeWarning,
            stacklevel=2,
        )
    return Targets(tables, tuple(constraints))


def build_targets_from_samples(
    graph: FactorGraph,
    sample_states: State,
    pseudocount: float = 0.0,
    sample_weights: jax.Array | None = None,
    factor_ids: Sequence[int] | None = None,
    constraints: Sequence[LinearConstraint] = (),
) -> Targets:
    """Targets from the empirical factor marginals of a data set.

    Parameters
    ----------
    graph : FactorGraph
    sample_states : dict
        ``{"cat": int[N, n_cat], "cont": float[N, n_cont]}``.
    pseudocount : float
        Weight ``alpha`` in ``[0, 1)`` of a uniform table mixed into each
        empirical table: ``(1 - alpha) * f_emp + alpha / num_cells``. It keeps
        unseen cells away from zero (whose theta would run to ``-inf``).
    sample_weights : float[N], optional
        Non-negative weight of each sample (e.g. sequence reweighting).
    factor_ids : sequence of int, optional
        Restrict the targets to these factors (default: all).
    constraints : sequence of LinearConstraint, optional
        Additional linear moment constraints.

    Returns
    -------
    Targets
    """
    if not 0.0 <= float(pseudocount) < 1.0:
        raise ValueError(f"pseudocount must be in [0, 1), got {pseudocount!r}")
    validate_states(graph, sample_states, "sample_states")
    if sample_weights is not None:
        w = np.asarray(sample_weights, np.float32)
        if w.shape != (np.shape(sample_states["cat"])[0],):
            raise ValueError(
                f"sample_weights must have one entry per sample, got {w.shape}"
            )
        if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError("sample_weights must be finite, >= 0, with a positive sum")
    tables = graph.unstack_tables(
        _weighted_moments(graph.plan, sample_states, sample_weights)
    )
    ids = [f.id for f in graph.factors] if factor_ids is None else list(factor_ids)
    alpha = float(pseudocount)
    out = {}
    for factor_id in ids:
        table = tables[graph.factor(factor_id).id]
        out[int(factor_id)] = (1.0 - alpha) * table + alpha / table.size
    return build_targets_from_marginals(graph, out, constraints)


@jax.jit
def _weighted_moments(
    plan: Plan, states: State, weights: jax.Array | None
) -> jax.Array:
    return moments_from_bins(plan, state_to_bins(plan, states), weights)


def compile_targets(graph: FactorGraph, targets: Targets) -> CompiledTargets:
    """Lay ``targets`` out on the graph's flat parameter vector."""
    if not isinstance(targets, Targets):
        raise ValueError(
            "targets must be a Targets object (see build_targets_from_marginals), "
            f"got {type(targets).__name__}"
        )
    plan = graph.plan
    values = np.zeros(plan.num_params, np.float32)
    mask = np.zeros(plan.num_params, np.float32)
    for factor_id, table in targets.moments.items():
        try:
            shape = graph.table_shape(factor_id)
        except ValueError:
            raise ValueError(
                f"targets.moments has factor {factor_id!r}, which is not in this "
                "graph: were the targets built for another graph?"
            ) from None
        if np.shape(table) != shape:
            raise ValueError(
                f"targets.moments[{factor_id}] has shape {np.shape(table)}, but "
                f"factor {factor_id} of this graph has table shape {shape}: were "
                "the targets built for another graph?"
            )
        start, stop = graph.cell_range(factor_id)
        values[start:stop] = np.ravel(table)
        mask[start:stop] = 1.0
    return CompiledTargets(
        values=jnp.asarray(values),
        mask=jnp.asarray(mask),
        linear=wire_linear_features(graph, [c.feature for c in targets.constraints]),
        linear_values=jnp.asarray(
            [c.target for c in targets.constraints], jnp.float32
        ).reshape(-1),
    )
