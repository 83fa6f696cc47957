"""Moment errors, an exact-enumeration oracle and correlation quality."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jax_smm.energy import energy_of_bins, extended_params
from jax_smm.features import moments_from_bins, orient_table
from jax_smm.graph import FactorGraph
from jax_smm.targets import Targets

MAX_ENUMERATION_STATES = 2**20
NOISE_SIGMAS = 8.0
ERROR_FLOOR = 0.02
_ENUMERATION_CHUNK = 2**16


def _linear_expectation(graph: FactorGraph, model_moments, constraint) -> float:
    """``E[W]`` of a constraint from the model table of the factor over its scope."""
    factor = graph.factor_over(constraint.var_ids)
    weights = orient_table(constraint.weights, constraint.var_ids, factor.var_ids)
    return float(np.sum(weights * np.asarray(model_moments[factor.id])))


def moment_errors(
    graph: FactorGraph, targets: Targets, model_moments: Mapping[int, Any]
) -> np.ndarray:
    """Absolute errors of every targeted cell and every linear constraint."""
    errs = [
        np.abs(np.asarray(model_moments[fid]) - np.asarray(t)).ravel()
        for fid, t in targets.moments.items()
    ]
    errs.append(
        np.asarray(
            [
                abs(_linear_expectation(graph, model_moments, c) - c.target)
                for c in targets.constraints
            ]
        )
    )
    return np.concatenate(errs)


def max_moment_error(
    graph: FactorGraph, targets: Targets, model_moments: Mapping[int, Any]
) -> float:
    """Largest absolute difference between model and target moments.

    Parameters
    ----------
    graph : FactorGraph
    targets : Targets
    model_moments : dict of int to array
        ``{factor_id: table}``, e.g. from :func:`estimate_moments` or
        :func:`exact_marginals`.
    """
    return float(np.max(moment_errors(graph, targets, model_moments), initial=0.0))


def mean_moment_error(
    graph: FactorGraph, targets: Targets, model_moments: Mapping[int, Any]
) -> float:
    """Mean absolute difference between model and target moments."""
    errors = moment_errors(graph, targets, model_moments)
    return float(errors.mean()) if errors.size else 0.0


def unmatched_targets(
    graph: FactorGraph,
    targets: Targets,
    model_moments: Mapping[int, Any],
    num_samples: int,
) -> list[tuple[float, str]]:
    """Targets that model moments miss by far more than their sampling noise.

    ``model_moments`` are taken to be the frequencies of ``num_samples``
    independent draws (e.g. one state of every chain). A target cell ``p`` is
    missed when ``|model - p| > max(NOISE_SIGMAS * sqrt(p (1 - p) / N),
    ERROR_FLOOR)`` (``p`` kept in ``[1/N, 1 - 1/N]``); a linear constraint when
    ``|E[W] - c|`` exceeds ``NOISE_SIGMAS`` standard errors of ``W`` and
    ``ERROR_FLOOR`` times the range of ``W``. At eight standard errors a
    consistent, converged fit essentially never trips the test.

    Returns
    -------
    list of (error, description)
        The worst cell of each missed factor and each missed constraint,
        largest error first.
    """
    n = float(num_samples)
    misses = []
    for factor_id, target in targets.moments.items():
        target = np.asarray(target, np.float64)
        model = np.asarray(model_moments[factor_id], np.float64)
        p = np.clip(target, 1.0 / n, 1.0 - 1.0 / n)
        error = np.abs(model - target)
        bound = np.maximum(NOISE_SIGMAS * np.sqrt(p * (1.0 - p) / n), ERROR_FLOOR)
        if np.any(error > bound):
            cell = np.unravel_index(np.argmax(error - bound), error.shape)
            cell = tuple(int(i) for i in cell)
            misses.append(
                (
                    float(error[cell]),
                    f"factor {factor_id} cell {cell}: target {target[cell]:.3g}, "
                    f"model {model[cell]:.3g}",
                )
            )
    for c in targets.constraints:
        factor = graph.factor_over(c.var_ids)
        weights = orient_table(c.weights, c.var_ids, factor.var_ids)
        table = np.asarray(model_moments[factor.id], np.float64)
        achieved = float(np.sum(weights * table))
        spread = max(float(np.sum(weights**2 * table)) - achieved**2, 0.0)
        bound = max(
            NOISE_SIGMAS * np.sqrt(spread / n),
            ERROR_FLOOR * float(weights.max() - weights.min()),
        )
        if abs(achieved - c.target) > bound:
            misses.append(
                (
                    abs(achieved - c.target),
                    f"constraint {c.name or c.var_ids!r}: target {c.target:.3g}, "
                    f"model {achieved:.3g}",
                )
            )
    return sorted(misses, key=lambda m: -m[0])


def joint_size(graph: FactorGraph) -> int:
    """Number of joint discrete configurations (states and bins)."""
    return math.prod(graph.plan.cards)


def enumerate_joint(
    graph: FactorGraph, theta_groups: Sequence[jax.Array] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """All joint configurations and their probabilities, by brute force.

    Returns
    -------
    configs : int32[N, n]
        Every configuration of states/bins, in row-major order.
    probs : float64[N]
        Their probabilities under ``p ∝ exp(sum theta)``.
    """
    size = joint_size(graph)
    if size > MAX_ENUMERATION_STATES:
        raise ValueError(
            f"graph has {size} joint states; exact enumeration is limited to "
            f"{MAX_ENUMERATION_STATES}"
        )
    groups = graph.theta_groups if theta_groups is None else theta_groups
    theta_ext = extended_params(groups)
    configs = np.stack(
        np.unravel_index(np.arange(size), graph.plan.cards), axis=-1
    ).astype(np.int32)
    score = jax.jit(energy_of_bins)
    energies = np.concatenate(
        [
            np.asarray(
                score(graph.plan, theta_ext, configs[i : i + _ENUMERATION_CHUNK])
            )
            for i in range(0, size, _ENUMERATION_CHUNK)
        ]
    ).astype(np.float64)
    probs = np.exp(energies - energies.max())
    return configs, probs / probs.sum()


def exact_marginals(
    graph: FactorGraph, theta_groups: Sequence[jax.Array] | None = None
) -> dict[int, jax.Array]:
    """Exact factor marginal tables by enumerating every joint configuration.

    Usable for graphs of up to ``2**20`` (about 1e6) joint states; continuous
    variables count their bins.

    Returns
    -------
    dict of int to jax.Array
        ``{factor_id: table}``, shaped like each theta.
    """
    configs, probs = enumerate_joint(graph, theta_groups)
    flat = moments_from_bins(graph.plan, jnp.asarray(configs), jnp.asarray(probs))
    return graph.unstack_tables(flat)


def exact_variable_marginals(
    graph: FactorGraph, theta_groups: Sequence[jax.Array] | None = None
) -> list[np.ndarray]:
    """Exact single-variable marginals (over states or bins) by enumeration."""
    configs, probs = enumerate_joint(graph, theta_groups)
    return [
        np.bincount(configs[:, v], weights=probs, minlength=card)
        for v, card in enumerate(graph.plan.cards)
    ]


def connected_correlations(
    graph: FactorGraph, moments: Mapping[int, Any]
) -> np.ndarray:
    """Connected correlations ``f_ij(a, b) - f_i(a) f_j(b)`` of every pair factor.

    The single-site frequencies come from the pair table's own margins.

    Returns
    -------
    numpy.ndarray
        All entries of every pair factor, concatenated (pair factors grouped by
        table shape, in graph order within a group).
    """
    by_shape: dict[tuple[int, ...], list[np.ndarray]] = {}
    for f in graph.factors:
        if f.order == 2:
            by_shape.setdefault(f.table_shape, []).append(np.asarray(moments[f.id]))
    if not by_shape:
        raise ValueError("the graph has no pair factors")
    out = []
    for tables in by_shape.values():
        t = np.stack(tables).astype(np.float64)  # (F, K_i, K_j)
        out.append((t - t.sum(2)[:, :, None] * t.sum(1)[:, None, :]).ravel())
    return np.concatenate(out)


def correlation_pearson(
    graph: FactorGraph,
    model_moments: Mapping[int, Any],
    target_moments: Mapping[int, Any],
) -> float:
    """Pearson correlation of model vs target connected pair correlations."""
    model = connected_correlations(graph, model_moments)
    target = connected_correlations(graph, target_moments)
    return float(np.corrcoef(model, target)[0, 1])
