"""The repository-compatible builder: estimates in, histograms out.

``DistributionBuilder(variables, estimates, config).build(target_variable)``
adapts the estimates to linear moment constraints, fits them with jax_smm's
stochastic moment matching, and reads every variable's marginal from the
persistent chains (averaged over chains and ``readout_sweeps`` sweeps). No dense
joint tensor is ever built.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

import jax_smm
from calibrated_response.maxent_smm.adapters import (
    RepoVariable,
    adapt,
    merge_equivalent,
)
from calibrated_response.maxent_smm.config import SMMConfig
from calibrated_response.models.distribution import HistogramDistribution
from jax_smm.features import orient_table

# The per-iteration curves of jax_smm.FitHistory that ``info["history"]`` keeps.
_CURVES = ("iteration", "max_error", "mean_error", "runtime")


class DistributionBuilder:
    """Fit the maximum-entropy distribution that honours a set of estimates.

    Parameters
    ----------
    variables : sequence of BinaryVariable or ContinuousVariable
        Unique names.
    estimates : sequence of estimates
        Unique ids; every variable they name must be in ``variables``.
    config : SMMConfig, optional

    Raises
    ------
    ValueError
        Duplicate variable names or estimate ids, an estimate naming an unknown
        variable, an expected value outside its variable's domain.
    """

    def __init__(
        self,
        variables: Sequence[RepoVariable],
        estimates: Sequence[Any],
        config: SMMConfig | None = None,
    ) -> None:
        self.variables = list(variables)
        self.estimates = list(estimates)
        self.config = SMMConfig() if config is None else config
        ids = [e.id for e in self.estimates]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"estimates: duplicate ids {dup}")
        known = {v.name for v in self.variables}
        for e in self.estimates:
            for name in _variables_of(e):
                if name not in known:
                    raise ValueError(
                        f"estimate {e.id!r} names unknown variable {name!r}; "
                        f"known variables: {sorted(known)}"
                    )
        self.problem = adapt(self.variables, self.estimates, self.config.max_bins)

    def build(
        self, target_variable: str | None = None
    ) -> tuple[HistogramDistribution, dict[str, Any]]:
        """Fit and return the target variable's histogram and diagnostics.

        Parameters
        ----------
        target_variable : str, optional
            Defaults to the first variable.

        Returns
        -------
        distribution : HistogramDistribution
        info : dict
            ``target_variable``, ``n_variables``, ``n_estimates``, ``n_factors``,
            ``history`` (``iteration``, ``max_error``, ``mean_error``,
            ``acceptance``, ``runtime``, ``skipped_constraints``),
            ``skipped_constraints``, ``bin_edges_list``, ``marginals`` (name ->
            probabilities) and ``constraint_satisfaction`` (per estimate id:
            ``target``, ``achieved``, ``error``).
        """
        names = [v.name for v in self.variables]
        target = names[0] if target_variable is None else target_variable
        if target not in names:
            raise ValueError(
                f"target_variable {target!r} is not a variable; known: {names}"
            )
        cfg, problem = self.config, self.problem
        graph = problem.graph
        history: dict[str, Any]
        start = time.perf_counter()
        distinct, shared = merge_equivalent(problem.constraints)
        if distinct:
            targets = jax_smm.build_targets_from_marginals(graph, {}, distinct)
            graph, fit = jax_smm.fit_smm(
                graph,
                targets,
                jax_smm.SMMConfig(
                    num_iterations=cfg.num_iterations,
                    num_chains=cfg.num_chains,
                    mcmc_steps_per_iteration=cfg.mcmc_steps_per_iteration,
                    learning_rate=cfg.learning_rate,
                    optimizer=cfg.optimizer,
                    l2_regularization=cfg.l2_regularization,
                    grad_clip=cfg.grad_clip,
                    param_clip=cfg.logit_clip,
                    average_fraction=cfg.average_fraction,
                    seed=cfg.seed,
                    progress=cfg.progress,
                ),
            )
            states = fit.final_states
            history = {name: getattr(fit, name).tolist() for name in _CURVES}
            multipliers = np.asarray(fit.multipliers, np.float64)
        else:
            history = {name: [] for name in _CURVES}
            multipliers = np.zeros(0)
            states = jax_smm.PersistentBuffer.initialize(
                graph, cfg.num_chains, cfg.seed
            ).states
        buffer = jax_smm.PersistentBuffer(states, jax.random.key(cfg.seed + 1))
        tempered = [t / cfg.temperature for t in graph.theta_groups]
        _, moments, kernel_info = buffer.sample_step(
            graph, n_sweeps=cfg.readout_sweeps, theta_groups=tempered
        )
        tables = graph.unstack_tables(moments)
        marginals = {
            name: HistogramDistribution(
                bin_edges=tuple(problem.bin_edges[i].tolist()),
                bin_probabilities=tuple(_normalised(tables[i]).tolist()),
            )
            for i, name in enumerate(names)
        }
        skipped = [
            {"estimate_id": s.estimate_id, "reason": s.reason} for s in problem.skipped
        ]
        # Equivalent estimates share one multiplier; each reports that one.
        history["multipliers"] = [float(multipliers[j]) for j in shared]
        history["acceptance"] = float(kernel_info.acceptance_rate)
        history["skipped_constraints"] = skipped
        info = {
            "target_variable": target,
            "n_variables": len(names),
            "n_estimates": len(self.estimates),
            "n_factors": len(graph.factors),
            "history": history,
            "skipped_constraints": skipped,
            "bin_edges_list": [e.tolist() for e in problem.bin_edges],
            "marginals": {n: list(h.bin_probabilities) for n, h in marginals.items()},
            "constraint_satisfaction": self._satisfaction(graph, tables),
            "fit_seconds": time.perf_counter() - start,
        }
        return marginals[target], info

    def get_all_marginals(
        self, info: dict[str, Any]
    ) -> dict[str, HistogramDistribution]:
        """Every variable's histogram from the ``info`` of :meth:`build`."""
        return {
            name: HistogramDistribution(bin_edges=edges, bin_probabilities=probs)
            for (name, probs), edges in zip(
                info["marginals"].items(), info["bin_edges_list"], strict=True
            )
        }

    def _satisfaction(
        self, graph: jax_smm.FactorGraph, tables: dict[int, np.ndarray]
    ) -> dict[str, dict[str, float | None]]:
        """Stated vs achieved value of every adapted estimate."""
        stated = {e.id: _stated(e) for e in self.estimates}
        out = {}
        for eid, constraint, (num, den) in zip(
            self.problem.estimate_ids,
            self.problem.constraints,
            self.problem.readouts,
            strict=True,
        ):
            factor = graph.factor_over(constraint.var_ids)
            table = np.asarray(tables[factor.id], np.float64)
            scope, order = constraint.var_ids, factor.var_ids
            mass = float(np.sum(orient_table(den, scope, order) * table))
            value = float(np.sum(orient_table(num, scope, order) * table))
            # A condition the model gives no mass has no conditional value.
            achieved = value / mass if mass > 0 else None
            out[eid] = {
                "target": stated[eid],
                "achieved": achieved,
                "error": None if achieved is None else abs(achieved - stated[eid]),
            }
        return out


def _variables_of(estimate: Any) -> list[str]:
    """Names of every variable an estimate mentions."""
    props = list(getattr(estimate, "conditions", ()))
    if hasattr(estimate, "proposition"):
        props.append(estimate.proposition)
    names = [p.variable for p in props]
    if hasattr(estimate, "variable"):
        names.append(estimate.variable)
    return names


def _stated(estimate: Any) -> float:
    """The number an estimate states (a probability or an expected value)."""
    if hasattr(estimate, "probability"):
        return float(estimate.probability)
    return float(estimate.expected_value)


def _normalised(table: np.ndarray) -> np.ndarray:
    """A float32 moment table as float64 probabilities summing to exactly 1."""
    p = np.asarray(table, np.float64)
    return p / p.sum()
