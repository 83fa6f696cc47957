"""Log-potential ("energy") of states, by direct gather.

Sign convention, used everywhere in the package: ``energy(x) = sum_f
theta_f[x_f]`` and ``p(x) ∝ exp(energy(x))``. Higher energy means *more*
probable (it is the negative of a physicist's energy).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from jax_smm.compile import Plan, flatten_theta
from jax_smm.features import (
    State,
    bin_index,
    factor_cells,
    state_to_bins,
    validate_states,
)
from jax_smm.graph import FactorGraph


def extended_params(theta_groups: Sequence[jax.Array]) -> jax.Array:
    """Flat parameters with a trailing zero (the cell padding indices point at)."""
    return jnp.concatenate([flatten_theta(theta_groups), jnp.zeros(1, jnp.float32)])


def energy_of_bins(plan: Plan, theta_ext: jax.Array, bins: jax.Array) -> jax.Array:
    """Sum of active factor cells for per-variable bins ``int32[..., n]``."""
    return jnp.sum(theta_ext[factor_cells(plan, bins)], axis=-1)


def energy(
    graph: FactorGraph,
    state: State,
    theta_groups: Sequence[jax.Array] | None = None,
) -> jax.Array:
    """Log-potential ``sum_f theta_f[x_f]`` of a state (``p ∝ exp(energy)``).

    Parameters
    ----------
    graph : FactorGraph
    state : dict
        ``{"cat": int32[..., n_cat], "cont": float32[..., n_cont]}``; leading
        batch axes are allowed.
    theta_groups : sequence of arrays, optional
        Group tables to use instead of the graph's own.

    Returns
    -------
    jax.Array
        The log-potential, shaped like the batch axes.

    Raises
    ------
    ValueError
        If ``state`` is not shaped for the graph or (when concrete) holds
        out-of-range values.

    Notes
    -----
    A graph is a pytree, so ``jax.jit(energy)(graph, state)`` compiles once for
    every graph of the same structure.
    """
    validate_states(graph, state, "state", batch_ndim=None)
    groups = graph.theta_groups if theta_groups is None else theta_groups
    plan = graph.plan
    return energy_of_bins(plan, extended_params(groups), state_to_bins(plan, state))


def local_energy_delta(
    graph: FactorGraph,
    state: State,
    var_id: int | jax.Array,
    proposed_value: int | float | jax.Array,
    theta_groups: Sequence[jax.Array] | None = None,
) -> jax.Array:
    """Change of log-potential when variable ``var_id`` takes ``proposed_value``.

    Only the factors adjacent to ``var_id`` are evaluated. ``var_id`` may be a
    traced integer, so the function can run inside ``jit``/``scan``.

    Parameters
    ----------
    graph : FactorGraph
    state : dict
        A single state (no batch axes).
    var_id : int
        The variable to change.
    proposed_value : int or float
        A state index (categorical) or a real value (continuous, binned).
    theta_groups : sequence of arrays, optional
        Group tables to use instead of the graph's own.

    Returns
    -------
    jax.Array
        ``energy(proposed state) - energy(state)``.
    """
    validate_states(graph, state, "state", batch_ndim=0)
    plan = graph.plan
    groups = graph.theta_groups if theta_groups is None else theta_groups
    theta_ext = extended_params(groups)
    bins = state_to_bins(plan, state)
    var_id = jnp.asarray(var_id, jnp.int32)
    proposed = proposed_bin(graph, var_id, proposed_value)
    new_bins = bins.at[var_id].set(proposed)
    adj = plan.var_factors[var_id]  # (A,), padding -> factor F (zero cell)
    vars_, strides = plan.factor_vars[adj], plan.factor_strides[adj]
    old_cells = plan.factor_offset[adj] + jnp.sum(bins[vars_] * strides, axis=-1)
    new_cells = plan.factor_offset[adj] + jnp.sum(new_bins[vars_] * strides, axis=-1)
    return jnp.sum(theta_ext[new_cells] - theta_ext[old_cells])


def proposed_bin(
    graph: FactorGraph, var_id: jax.Array, value: int | float | jax.Array
) -> jax.Array:
    """State index of ``value`` for variable ``var_id`` (binned if continuous)."""
    plan = graph.plan
    value = jnp.asarray(value)
    if not plan.cont_vars:
        return value.astype(jnp.int32)
    is_cont = jnp.asarray([v.is_continuous for v in graph.variables])[var_id]
    low = jnp.asarray([v.low or 0.0 for v in graph.variables], jnp.float32)[var_id]
    high = jnp.asarray([v.high or 1.0 for v in graph.variables], jnp.float32)[var_id]
    card = jnp.asarray(plan.cards, jnp.int32)[var_id]
    binned = bin_index(value.astype(jnp.float32), low, high, card)
    return jnp.where(is_cont, binned, value.astype(jnp.int32))
