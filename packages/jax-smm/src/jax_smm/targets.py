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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from jax_smm.features import (
    LinearFeature,
    LinearWiring,
    State,
    moments_from_bins,
    state_to_bins,
    wire_linear_features,
)
from jax_smm.graph import FactorGraph, Plan

MARGINAL_TOLERANCE = 1e-4


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


def _check_table(name: str, table: np.ndarray, shape: tuple[int, ...]) -> None:
    if table.shape != shape:
        raise ValueError(f"{name}: shape {table.shape} != factor table_shape {shape}")
    if not np.all(np.isfinite(table)) or np.any(table < 0):
        raise ValueError(f"{name}: entries must be finite and non-negative")
    total = float(table.sum())
    if abs(total - 1.0) > MARGINAL_TOLERANCE:
        raise ValueError(f"{name}: entries must sum to 1, they sum to {total:.6g}")


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
    """
    tables = {}
    for factor_id, table in marginal_tables.items():
        factor = graph.factor(factor_id)
        arr = np.asarray(table, np.float32)
        _check_table(f"marginal_tables[{factor_id}]", arr, factor.table_shape)
        tables[factor.id] = arr
    if not tables and not constraints:
        raise ValueError("marginal_tables and constraints are both empty")
    wire_linear_features(graph, [c.feature for c in constraints])  # validates
    return Targets(tables, tuple(constraints))


def validate_states(graph: FactorGraph, states: State, name: str) -> None:
    """Raise ``ValueError`` unless ``states`` holds in-range states of the graph."""
    plan = graph.plan
    cat = np.asarray(states.get("cat", np.zeros((0, 0))))
    cont = np.asarray(states.get("cont", np.zeros((cat.shape[0], 0))))
    if cat.ndim != 2 or cat.shape[1] != graph.n_cat:
        raise ValueError(
            f"{name}['cat'] must be shaped (num_samples, {graph.n_cat}), "
            f"got {cat.shape}"
        )
    if cont.shape != (cat.shape[0], graph.n_cont):
        raise ValueError(
            f"{name}['cont'] must be shaped ({cat.shape[0]}, {graph.n_cont}), "
            f"got {cont.shape}"
        )
    if cat.shape[0] == 0:
        raise ValueError(f"{name} holds no samples")
    if not np.issubdtype(cat.dtype, np.integer):
        raise ValueError(f"{name}['cat'] must hold integers, got {cat.dtype}")
    cards = np.asarray([plan.cards[v] for v in plan.cat_vars])
    bad = (cat < 0) | (cat >= cards)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(
            f"{name}['cat'][{i}, {j}] = {cat[i, j]} is out of range "
            f"[0, {cards[j]}) for variable {plan.cat_vars[j]}"
        )
    low, high = np.asarray(plan.cont_low), np.asarray(plan.cont_high)
    bad = ~np.isfinite(cont) | (cont < low) | (cont > high)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(
            f"{name}['cont'][{i}, {j}] = {cont[i, j]} is outside "
            f"[{low[j]}, {high[j]}] for variable {plan.cont_vars[j]}"
        )


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
