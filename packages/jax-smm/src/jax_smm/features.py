"""Feature maps: binning of continuous values, factor cells and linear features.

The sufficient statistics of the model are the indicator tables of its factors
(``phi_f(x) = onehot(x_f)``, so ``E[phi_f]`` is the factor's marginal table) and,
optionally, *linear features* ``W(x_S)``: a fixed weight table over a scope ``S``
whose expectation is constrained to a value. A linear feature with multiplier
``lambda`` adds ``lambda * W`` to the log-potential of the factor over ``S``.

Continuous variables enter factor tables through equal-width bins; this module
owns that discretization, so every other module agrees on it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from jax_smm.compile import Plan
from jax_smm.graph import FactorGraph, Variable

State = dict[str, jax.Array]


def bin_edges(variable: Variable) -> np.ndarray:
    """Edges of the equal-width bins of a bounded continuous variable."""
    if not variable.is_continuous:
        raise ValueError(f"variable {variable.name!r} is not bounded_continuous")
    return np.linspace(variable.low, variable.high, variable.num_bins + 1)


def bin_centers(variable: Variable) -> np.ndarray:
    """Centers of the equal-width bins of a bounded continuous variable."""
    edges = bin_edges(variable)
    return 0.5 * (edges[1:] + edges[:-1])


def _cont_arrays(plan: Plan) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Lows, highs and bin counts of the continuous variables (``cont`` order)."""
    low = jnp.asarray(plan.cont_low, jnp.float32)
    high = jnp.asarray(plan.cont_high, jnp.float32)
    bins = jnp.asarray([plan.cards[v] for v in plan.cont_vars], jnp.int32)
    return low, high, bins


def bin_index(
    values: jax.Array, low: jax.Array, high: jax.Array, num_bins: jax.Array
) -> jax.Array:
    """Bin of each value (``high`` falls in the last bin; values are clipped).

    Parameters
    ----------
    values, low, high, num_bins : arrays
        Broadcastable; ``num_bins`` is an integer array.

    Returns
    -------
    jax.Array
        ``int32`` bin indices in ``[0, num_bins - 1]``.
    """
    scaled = (values - low) / (high - low) * num_bins
    return jnp.clip(jnp.floor(scaled).astype(jnp.int32), 0, num_bins - 1)


def uniform_in_bin(
    rng_key: jax.Array,
    bins: jax.Array,
    low: jax.Array,
    high: jax.Array,
    num_bins: jax.Array,
) -> jax.Array:
    """Draw a value uniformly inside each given bin.

    Under the binned model the position inside a bin is uniform and independent of
    everything else, so this draw is exact.
    """
    width = (high - low) / num_bins
    u = jax.random.uniform(rng_key, jnp.shape(bins), jnp.float32)
    value = low + (bins + u) * width
    return jnp.clip(value, low, high).astype(jnp.float32)


def validate_states(
    graph: FactorGraph, states: State, name: str, batch_ndim: int | None = 1
) -> None:
    """Raise ``ValueError`` unless ``states`` holds in-range states of the graph.

    Parameters
    ----------
    graph : FactorGraph
    states : dict
        ``{"cat": int[..., n_cat], "cont": float[..., n_cont]}`` (``"cont"`` may
        be left out when the graph has no continuous variable).
    name : str
        The argument's name, for the error messages.
    batch_ndim : int or None
        Number of leading (sample) axes required; ``None`` allows any number,
        none included (a single state). With leading axes, at least one sample.

    Notes
    -----
    Shapes and dtypes are always checked; values only when concrete (inside a
    ``jit`` trace they are not known, and are left to the caller).
    """
    plan = graph.plan
    if not isinstance(states, Mapping) or "cat" not in states:
        raise ValueError(
            f"{name} must be a dict with keys 'cat' and 'cont', got "
            f"{type(states).__name__}"
        )
    extra = set(states) - {"cat", "cont"}
    if extra:
        raise ValueError(f"{name} has unknown keys {sorted(extra)}; allowed: cat, cont")
    cat = states["cat"]
    batch = np.shape(cat)[:-1]
    cont = states.get("cont", np.zeros((*batch, 0), np.float32))
    ndim = len(np.shape(cat))
    if (batch_ndim is None and ndim < 1) or (
        batch_ndim is not None and ndim != batch_ndim + 1
    ):
        lead = ["..."] if batch_ndim is None else ["num_samples"] * batch_ndim
        shape = ", ".join([*lead, str(graph.n_cat)]) + ("," if not lead else "")
        raise ValueError(f"{name}['cat'] must be shaped ({shape}), got {np.shape(cat)}")
    if np.shape(cat)[-1] != graph.n_cat:
        raise ValueError(
            f"{name}['cat'] must have {graph.n_cat} columns (one per categorical "
            f"variable), got shape {np.shape(cat)}"
        )
    if np.shape(cont) != (*batch, graph.n_cont):
        raise ValueError(
            f"{name}['cont'] must be shaped {(*batch, graph.n_cont)}, got "
            f"{np.shape(cont)}"
        )
    if batch and math.prod(batch) == 0:
        raise ValueError(f"{name} holds no samples")
    if not np.issubdtype(np.result_type(cat), np.integer):
        raise ValueError(f"{name}['cat'] must hold integers, got {np.result_type(cat)}")
    if not np.issubdtype(np.result_type(cont), np.number):
        raise ValueError(
            f"{name}['cont'] must hold numbers, got {np.result_type(cont)}"
        )
    if isinstance(cat, jax.core.Tracer) or isinstance(cont, jax.core.Tracer):
        return
    cat, cont = np.asarray(cat), np.asarray(cont)
    cards = np.asarray([plan.cards[v] for v in plan.cat_vars], np.int64)
    _refuse_first_bad(
        f"{name}['cat']",
        cat,
        (cat < 0) | (cat >= cards),
        lambda j: f"is out of range [0, {cards[j]}) for variable {plan.cat_vars[j]}",
    )
    low, high = np.asarray(plan.cont_low), np.asarray(plan.cont_high)
    _refuse_first_bad(
        f"{name}['cont']",
        cont,
        ~np.isfinite(cont) | (cont < low) | (cont > high),
        lambda j: f"is outside [{low[j]}, {high[j]}] for variable {plan.cont_vars[j]}",
    )


def _refuse_first_bad(
    name: str, values: np.ndarray, bad: np.ndarray, allowed: Callable[[int], str]
) -> None:
    """Raise naming the first bad entry; ``allowed(column)`` says what is allowed."""
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{name}{list(index)} = {values[index]} {allowed(index[-1])}")


def state_to_bins(plan: Plan, state: State) -> jax.Array:
    """Discretize a (batch of) state pytree(s) into per-variable bins.

    Parameters
    ----------
    plan : Plan
    state : dict
        ``{"cat": int32[..., n_cat], "cont": float32[..., n_cont]}``.

    Returns
    -------
    jax.Array
        ``int32[..., n]``: the state of categorical variables and the bin of
        continuous ones, in variable order.
    """
    cat = jnp.asarray(state["cat"], jnp.int32)
    parts = [cat]
    if plan.cont_vars:
        low, high, nb = _cont_arrays(plan)
        parts.append(bin_index(jnp.asarray(state["cont"], jnp.float32), low, high, nb))
    stacked = jnp.concatenate(parts, axis=-1)
    inverse = np.argsort(np.asarray(plan.cat_vars + plan.cont_vars, np.int64))
    return stacked[..., inverse]


def bins_to_state(
    plan: Plan, bins: jax.Array, rng_key: jax.Array, previous: State | None = None
) -> State:
    """Turn per-variable bins back into a state pytree.

    Continuous values are drawn uniformly inside their bin; where ``previous``
    is given and its value already lies in the same bin, that value is kept
    (both are exact draws under the binned model).
    """
    cat = bins[..., np.asarray(plan.cat_vars, np.int64)].astype(jnp.int32)
    cont_bins = bins[..., np.asarray(plan.cont_vars, np.int64)]
    if not plan.cont_vars:
        return {"cat": cat, "cont": jnp.zeros((*bins.shape[:-1], 0), jnp.float32)}
    low, high, nb = _cont_arrays(plan)
    fresh = uniform_in_bin(rng_key, cont_bins, low, high, nb)
    if previous is not None:
        old = jnp.asarray(previous["cont"], jnp.float32)
        fresh = jnp.where(bin_index(old, low, high, nb) == cont_bins, old, fresh)
    return {"cat": cat, "cont": fresh}


def factor_cells(plan: Plan, bins: jax.Array) -> jax.Array:
    """Flat parameter index of every factor's active cell.

    Parameters
    ----------
    plan : Plan
    bins : int32[..., n]
        Per-variable states/bins (see :func:`state_to_bins`).

    Returns
    -------
    jax.Array
        ``int32[..., F]``, positions in the flat parameter vector.
    """
    num_f = plan.num_factors
    vals = bins[..., plan.factor_vars[:num_f]]  # (..., F, 3)
    return plan.factor_offset[:num_f] + jnp.sum(
        vals * plan.factor_strides[:num_f], axis=-1
    )


@dataclass(frozen=True)
class LinearFeature:
    """A fixed weight table over a scope: ``phi(x) = weights[x_S]``.

    Parameters
    ----------
    var_ids : tuple of int
        The scope ``S`` (1 to 3 distinct variables).
    weights : array_like
        Table shaped by the cardinalities of ``S`` (states or bins).
    """

    var_ids: tuple[int, ...]
    weights: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "var_ids", tuple(int(v) for v in self.var_ids))
        w = np.asarray(self.weights, np.float32)
        if not np.all(np.isfinite(w)):
            raise ValueError("weights must be finite")
        object.__setattr__(self, "weights", w)


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class LinearWiring:
    """Linear features compiled onto the flat parameter vector.

    Attributes
    ----------
    cells : int32[M]
        Flat parameter positions touched by the features.
    weights : float32[M]
        The weight of each position.
    feature : int32[M]
        Which feature each position belongs to.
    num_features : int
        Number of features (static).
    """

    cells: jax.Array
    weights: jax.Array
    feature: jax.Array
    num_features: int = field(default=0, metadata={"static": True})


def orient_table(
    table: np.ndarray, var_ids: Sequence[int], target_var_ids: Sequence[int]
) -> np.ndarray:
    """Transpose a table over ``var_ids`` to the axis order ``target_var_ids``."""
    return np.transpose(table, [list(var_ids).index(v) for v in target_var_ids])


def wire_linear_features(
    graph: FactorGraph, features: Sequence[LinearFeature]
) -> LinearWiring:
    """Place each feature's weight table on the cells of the factor over its scope.

    Raises
    ------
    ValueError
        If a feature's scope has no factor in the graph, or its weights are not
        shaped by the scope's cardinalities.
    """
    cells, weights, ids = [], [], []
    for j, feat in enumerate(features):
        expected = tuple(graph.variables[v].cardinality for v in feat.var_ids)
        if feat.weights.shape != expected:
            raise ValueError(
                f"features[{j}]: weights shape {feat.weights.shape} != {expected}, "
                f"the cardinalities of var_ids {feat.var_ids}"
            )
        factor = graph.factor_over(feat.var_ids)
        if factor is None:
            raise ValueError(
                f"features[{j}]: no factor over var_ids {feat.var_ids}; add one "
                "(with zero theta) to the graph to carry the constraint"
            )
        table = orient_table(feat.weights, feat.var_ids, factor.var_ids)
        start, stop = graph.cell_range(factor.id)
        cells.append(np.arange(start, stop))
        weights.append(table.ravel())
        ids.append(np.full(table.size, j))
    if not features:
        return LinearWiring(
            jnp.zeros(0, jnp.int32), jnp.zeros(0, jnp.float32), jnp.zeros(0, jnp.int32)
        )
    return LinearWiring(
        cells=jnp.asarray(np.concatenate(cells), jnp.int32),
        weights=jnp.asarray(np.concatenate(weights), jnp.float32),
        feature=jnp.asarray(np.concatenate(ids), jnp.int32),
        num_features=len(features),
    )


def add_linear_terms(
    theta_flat: jax.Array, multipliers: jax.Array, wiring: LinearWiring
) -> jax.Array:
    """Effective flat log-potentials ``theta + sum_j lambda_j W_j``."""
    if wiring.num_features == 0:
        return theta_flat
    return theta_flat.at[wiring.cells].add(multipliers[wiring.feature] * wiring.weights)


def linear_expectations(moments_flat: jax.Array, wiring: LinearWiring) -> jax.Array:
    """``E[W_j]`` of every feature from flat factor marginals."""
    return jax.ops.segment_sum(
        moments_flat[wiring.cells] * wiring.weights,
        wiring.feature,
        num_segments=wiring.num_features,
    )


def moments_from_bins(
    plan: Plan, bins: jax.Array, weights: jax.Array | None = None
) -> jax.Array:
    """Flat factor marginals of a set of states, by segment-sum on cell indices.

    Parameters
    ----------
    plan : Plan
    bins : int32[..., n]
        States (any leading axes: samples, sweeps, chains), see
        :func:`state_to_bins`.
    weights : float32[...], optional
        Non-negative weight of each state (shaped like the leading axes);
        uniform if omitted.

    Returns
    -------
    jax.Array
        ``float32[P]``: every factor's table, each summing to 1, flattened in
        plan order.
    """
    cells = factor_cells(plan, bins).reshape(-1, plan.num_factors)
    if weights is None:
        weights = jnp.ones(cells.shape[0], jnp.float32)
    weights = jnp.reshape(jnp.asarray(weights, jnp.float32), (-1,))
    total = jax.ops.segment_sum(
        jnp.broadcast_to(weights[:, None], cells.shape).ravel(),
        cells.ravel(),
        num_segments=plan.num_params,
    )
    return total / jnp.sum(weights)


def estimate_moments(graph: FactorGraph, states: State) -> dict[int, jax.Array]:
    """Model moments (factor marginal tables) averaged over a batch of states.

    Parameters
    ----------
    graph : FactorGraph
    states : dict
        ``{"cat": int32[..., n_cat], "cont": float32[..., n_cont]}`` with any
        leading axes (e.g. ``(sweeps, chains)``); every state counts equally.

    Returns
    -------
    dict of int to jax.Array
        ``{factor_id: table}``, each shaped like the factor's theta.

    Raises
    ------
    ValueError
        If ``states`` are not shaped for the graph or hold out-of-range values.
    """
    validate_states(graph, states, "states", batch_ndim=None)
    states = {key: jnp.asarray(value) for key, value in states.items()}
    return graph.unstack_tables(_estimate_flat(graph.plan, states))


@jax.jit
def _estimate_flat(plan: Plan, states: State) -> jax.Array:
    return moments_from_bins(plan, state_to_bins(plan, states))
