"""The repository-compatible builder: estimates in, histograms out.

``DistributionBuilder(variables, estimates, config).fit()`` adapts the
estimates to linear moment constraints, fits them with jax_smm's stochastic
moment matching, reads every variable's marginal from the persistent chains
(averaged over chains and ``readout_sweeps`` sweeps) and returns the
:class:`FittedDistribution` (query, sample, save); ``build(target_variable)``
is the spec's form, built on it. No dense joint tensor is ever built.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from pydantic import BaseModel, TypeAdapter

import jax_smm
from calibrated_response.maxent_smm.adapters import (
    RepoVariable,
    adapt,
    merge_equivalent,
)
from calibrated_response.maxent_smm.config import SMMConfig
from calibrated_response.maxent_smm.fitted import FittedDistribution
from calibrated_response.models.distribution import HistogramDistribution
from calibrated_response.models.query import EstimateUnion
from calibrated_response.models.variable import ContinuousVariable, VariableUnion
from jax_smm.features import orient_table

# The per-iteration curves of jax_smm.FitHistory that ``info["history"]`` keeps.
_CURVES = ("iteration", "max_error", "mean_error", "runtime")
_VARIABLE = TypeAdapter(VariableUnion)
_ESTIMATE = TypeAdapter(EstimateUnion)


class DistributionBuilder:
    """Fit the maximum-entropy distribution that honors a set of estimates.

    Parameters
    ----------
    variables : sequence of BinaryVariable or ContinuousVariable
        Unique names (dicts in the JSON form are validated into them).
    estimates : sequence of estimates
        Unique ids; every variable they name must be in ``variables`` (dicts
        in the JSON form are validated into them).
    config : SMMConfig or dict, optional

    Raises
    ------
    TypeError
        ``variables`` or ``estimates`` not a list (or tuple), or an item that
        is neither a model nor a dict.
    ValueError
        Duplicate variable names or estimate ids, an estimate naming an unknown
        variable, an expected value outside its variable's domain, an invalid
        dict.
    """

    def __init__(
        self,
        variables: Sequence[RepoVariable],
        estimates: Sequence[Any],
        config: SMMConfig | dict[str, Any] | None = None,
    ) -> None:
        self.variables = _validated(variables, "variables", _VARIABLE)
        self.estimates = _validated(estimates, "estimates", _ESTIMATE)
        if config is None:
            config = SMMConfig()
        elif isinstance(config, dict):
            config = SMMConfig.model_validate(config)
        elif not isinstance(config, SMMConfig):
            raise TypeError(
                f"config must be an SMMConfig or a dict, got {type(config).__name__}"
            )
        self.config = config
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

    def fit(self) -> FittedDistribution:
        """Fit the distribution and return it, to query, sample and save.

        The fitted tables are divided by ``config.temperature`` (1: the fitted
        model itself) and every marginal is read out from the persistent
        chains, averaged over ``config.readout_sweeps`` sweeps of every chain.

        Returns
        -------
        FittedDistribution
            With ``info``: ``n_variables``, ``n_estimates``, ``n_factors``,
            ``history`` (``iteration``, ``max_error``, ``mean_error`` (in the
            scaled units the fit works in), ``runtime``, ``multipliers``,
            ``acceptance``, ``skipped_constraints``), ``skipped_constraints``,
            ``constraint_satisfaction`` (per estimate id: ``target``,
            ``achieved``, ``error``, in the estimate's units) and
            ``fit_seconds``.
        """
        cfg, problem = self.config, self.problem
        graph = problem.graph
        start = time.perf_counter()
        distinct, shared = merge_equivalent(problem.constraints)
        if distinct:
            targets = jax_smm.build_targets_from_marginals(graph, {}, distinct)
            graph, fit = jax_smm.fit_smm(graph, targets, self._smm_config())
            states = fit.final_states
            history = {name: getattr(fit, name).tolist() for name in _CURVES}
            multipliers = np.asarray(fit.multipliers, np.float64)
        else:
            history = {name: [] for name in _CURVES}
            multipliers = np.zeros(0)
            states = jax_smm.PersistentBuffer.initialize(
                graph, cfg.num_chains, cfg.seed
            ).states
        tempered = graph.with_theta([t / cfg.temperature for t in graph.theta_groups])
        buffer = jax_smm.PersistentBuffer(states, jax.random.key(cfg.seed + 1))
        buffer, moments, kernel_info = buffer.sample_step(
            tempered, n_sweeps=cfg.readout_sweeps
        )
        tables = graph.unstack_tables(moments)
        marginals = {
            name: HistogramDistribution(
                bin_edges=tuple(problem.bin_edges[i].tolist()),
                bin_probabilities=tuple(_normalised(tables[i]).tolist()),
            )
            for i, name in enumerate(problem.variable_names)
        }
        skipped = [
            {"estimate_id": s.estimate_id, "reason": s.reason} for s in problem.skipped
        ]
        # Equivalent estimates share one multiplier; each reports that one.
        history["multipliers"] = [float(multipliers[j]) for j in shared]
        history["acceptance"] = float(kernel_info.acceptance_rate)
        history["skipped_constraints"] = skipped
        satisfaction = self._satisfaction(graph, tables)
        info = {
            "n_variables": len(self.variables),
            "n_estimates": len(self.estimates),
            "n_factors": len(graph.factors),
            "history": history,
            "skipped_constraints": skipped,
            "constraint_satisfaction": satisfaction,
            "fit_seconds": time.perf_counter() - start,
        }
        model = jax_smm.MaxEntModel(tempered, buffer.get_states())
        return FittedDistribution(
            self.variables,
            self.estimates,
            model,
            cfg.max_bins,
            marginals,
            self._report(satisfaction, skipped),
            info,
        )

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
            The ``info`` of :meth:`fit` plus ``target_variable``,
            ``bin_edges_list`` and ``marginals`` (name -> probabilities).
        """
        names = [v.name for v in self.variables]
        target = names[0] if target_variable is None else target_variable
        if target not in names:
            raise ValueError(
                f"target_variable {target!r} is not a variable; known: {names}"
            )
        fitted = self.fit()
        marginals = fitted.marginals()
        info = {
            "target_variable": target,
            **fitted.info,
            "bin_edges_list": [e.tolist() for e in self.problem.bin_edges],
            "marginals": {n: list(h.bin_probabilities) for n, h in marginals.items()},
        }
        return marginals[target], info

    def _smm_config(self) -> jax_smm.SMMConfig:
        """jax_smm's settings from the builder's."""
        cfg = self.config
        return jax_smm.SMMConfig(
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
        )

    def _report(
        self,
        satisfaction: dict[str, dict[str, float | None]],
        skipped: list[dict[str, str]],
    ) -> list[dict[str, Any]]:
        """One row per estimate: stated, achieved, tolerance, met or skipped."""
        reasons = {s["estimate_id"]: s["reason"] for s in skipped}
        by_name = {v.name: v for v in self.variables}
        rows = []
        for e in self.estimates:
            row = satisfaction.get(e.id, {})
            achieved, error = row.get("achieved"), row.get("error")
            variable = by_name.get(getattr(e, "variable", None))
            spread = (
                variable.upper_bound - variable.lower_bound
                if isinstance(variable, ContinuousVariable)
                else 1.0
            )
            tolerance = self.config.tolerance * spread
            rows.append(
                {
                    "id": e.id,
                    "estimate_type": e.estimate_type,
                    "target": _stated(e),
                    "achieved": achieved,
                    "error": error,
                    "tolerance": tolerance,
                    "met": None
                    if e.id in reasons
                    else error is not None and error <= tolerance,
                    "skipped": reasons.get(e.id),
                }
            )
        return rows

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


def _validated(items: Any, name: str, adapter: TypeAdapter) -> list[Any]:
    """A list of pydantic models; dicts (the JSON form) are validated."""
    if not isinstance(items, (list, tuple)):
        raise TypeError(f"{name} must be a list, got {type(items).__name__}")
    out = []
    for i, item in enumerate(items):
        if isinstance(item, dict):
            item = adapter.validate_python(item)
        elif not isinstance(item, BaseModel):
            raise TypeError(
                f"{name}[{i}] must be a model or a dict, got {type(item).__name__}"
            )
        out.append(item)
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
