"""Bridge from the repository models to jax_smm graphs and moment constraints.

Every variable becomes a jax_smm variable (binary -> categorical(2), continuous
-> bounded_continuous with ``max_bins`` equal bins) carrying a zero unary factor.
Every supported estimate becomes one linear moment constraint
``E[W(x_S)] = c`` on the factor over its scope ``S`` (the estimate's variable plus
the variables of its conditions), with one learned multiplier per estimate, so
several estimates on one scope add up and the fixed point is the exact
maximum-entropy distribution of the binned model:

* ``P(A) = p``: ``W = 1_A``, ``c = p``;
* ``E[X] = mu``: ``W = x`` (the mean of each bin), ``c = mu``;
* ``P(A | C) = p``: ``W = 1_C (1_A - p)``, ``c = 0``;
* ``E[X | C] = mu``: ``W = 1_C (x - mu)``, ``c = 0``;

so conditionals say nothing about ``P(C)``. Each ``(W, c)`` is divided by the
spread of ``W`` so every multiplier works on the same scale. Indicators are
exact for the piecewise-uniform density inside a bin: a threshold inside a bin
counts the fraction of the bin on its side (bin centers are never compared with
thresholds), and ``x`` restricted to a part of a bin takes that part's mean.

Unsupported forms are not dropped silently: each lands in ``skipped`` with a
deterministic reason.

Estimates that state the *same* constraint (e.g. ``P(B) = 0.3``, ``E[B] = 0.3``
and ``P(not B) = 0.7`` on a binary ``B``, or a repeated conditional) share one
multiplier in the fit (:func:`merge_equivalent`): the maximum-entropy solution
is the same, while Adam would otherwise move that one direction once per copy
and multiply its step size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from calibrated_response.models.query import (
    ConditionalExpectationEstimate,
    ConditionalProbabilityEstimate,
    EqualityProposition,
    ExpectationEstimate,
    InequalityProposition,
    ProbabilityEstimate,
    Proposition,
)
from calibrated_response.models.variable import BinaryVariable, ContinuousVariable
from jax_smm import Factor, FactorGraph, LinearConstraint
from jax_smm import Variable as SMMVariable
from jax_smm.features import orient_table

MAX_CONDITIONS = 2
MAX_TABLE_CELLS = 2**24
EQUIVALENCE_DECIMALS = 9
BINARY_EDGES = (0.0, 0.5, 1.0)
RepoVariable = BinaryVariable | ContinuousVariable


@dataclass(frozen=True)
class SkippedConstraint:
    """An estimate that could not become a constraint, and why."""

    estimate_id: str
    reason: str


@dataclass(frozen=True)
class AdaptedProblem:
    """A problem ready for :func:`jax_smm.fit_smm`.

    Attributes
    ----------
    graph : jax_smm.FactorGraph
        One zero unary factor per variable plus a zero factor over every
        constraint scope.
    constraints : tuple of jax_smm.LinearConstraint
        One per supported estimate, named by the estimate id.
    estimate_ids : tuple of str
        The estimate behind each constraint.
    readouts : tuple of (numpy.ndarray, numpy.ndarray)
        Per constraint, tables ``(num, den)`` over its scope such that the
        estimate's stated quantity is ``E[num] / E[den]`` (``den`` is all ones for
        unconditional estimates).
    skipped : tuple of SkippedConstraint
        The estimates that were not turned into constraints.
    bin_edges : tuple of numpy.ndarray
        The bin edges of every variable (binary: ``[0, 0.5, 1]``).
    variable_names : tuple of str
    """

    graph: FactorGraph
    constraints: tuple[LinearConstraint, ...]
    estimate_ids: tuple[str, ...]
    readouts: tuple[tuple[np.ndarray, np.ndarray], ...]
    skipped: tuple[SkippedConstraint, ...]
    bin_edges: tuple[np.ndarray, ...]
    variable_names: tuple[str, ...]


class UnsupportedEstimate(Exception):
    """Raised inside the adapter for a form it cannot represent."""


def to_smm_variable(variable: RepoVariable, max_bins: int) -> SMMVariable:
    """The jax_smm variable of a repository variable.

    Raises
    ------
    ValueError
        When the bins of a continuous variable cannot be told apart in the
        float32 arithmetic the sampler uses (bounds beyond about 3.4e38, or a
        range too narrow for its bounds' magnitude).
    """
    if isinstance(variable, BinaryVariable):
        return SMMVariable.categorical(variable.name, 2)
    if isinstance(variable, ContinuousVariable):
        low, high = variable.get_domain()
        with np.errstate(over="ignore"):
            edges = np.linspace(low, high, max_bins + 1).astype(np.float32)
        if not (np.all(np.isfinite(edges)) and np.all(np.diff(edges) > 0)):
            raise ValueError(
                f"variable {variable.name!r}: the range [{low}, {high}] in "
                f"{max_bins} bins is not representable in float32 (bounds must be "
                "within +-3.4e38 and the bins wider than about 1e-7 of the "
                "bounds' magnitude)"
            )
        return SMMVariable.continuous(variable.name, low, high, max_bins)
    raise ValueError(f"unsupported variable type: {type(variable).__name__}")


def variable_edges(variable: RepoVariable, max_bins: int) -> np.ndarray:
    """Bin edges of a variable as the histograms report them."""
    if isinstance(variable, BinaryVariable):
        return np.asarray(BINARY_EDGES)
    low, high = variable.get_domain()
    return np.linspace(low, high, max_bins + 1)


def _interval(prop: Proposition, variable: RepoVariable) -> tuple[float, float]:
    """The proposition as an interval of a continuous variable's domain."""
    if not isinstance(variable, ContinuousVariable):
        raise UnsupportedEstimate(
            f"inequality on binary variable {variable.name!r} (use an equality)"
        )
    low, high = variable.get_domain()
    if isinstance(prop, EqualityProposition):
        raise UnsupportedEstimate(
            f"equality on continuous variable {variable.name!r} has probability 0"
        )
    if prop.is_lower_bound:
        return (max(low, prop.threshold), high)
    return (low, min(high, prop.threshold))


def _binary_indicator(prop: Proposition, variable: RepoVariable) -> np.ndarray:
    """``[1_{A=False}, 1_{A=True}]`` terms of an equality on a binary variable."""
    if isinstance(prop, InequalityProposition):
        raise UnsupportedEstimate(
            f"inequality on binary variable {variable.name!r} (use an equality)"
        )
    if not isinstance(prop.value, bool) and prop.value not in (0, 1):
        raise UnsupportedEstimate(
            f"equality value {prop.value!r} on binary variable {variable.name!r}"
        )
    return np.asarray([0.0, 1.0]) if bool(prop.value) else np.asarray([1.0, 0.0])


def _bin_parts(
    edges: np.ndarray, lo: float, hi: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per bin: the fraction inside ``[lo, hi]`` and the mean of that part."""
    left = np.maximum(edges[:-1], lo)
    right = np.minimum(edges[1:], hi)
    overlap = np.clip(right - left, 0.0, None)
    fraction = overlap / np.diff(edges)
    center = np.where(overlap > 0, 0.5 * (left + right), 0.5 * (edges[:-1] + edges[1:]))
    return fraction, center


class EventScope:
    """Weights over the bins of the variables an event or estimate mentions.

    Propositions added with :meth:`add_event` intersect (a conjunction);
    :meth:`axis_weights` gives, per variable, the probability of the event
    inside each of its bins (binary: 0 or 1; continuous: the fraction of the
    bin on the event's side, as the density is uniform inside a bin).
    """

    def __init__(
        self, index: dict[str, int], variables: Sequence[RepoVariable], max_bins: int
    ) -> None:
        self.index, self.variables, self.max_bins = index, variables, max_bins
        self.var_ids: list[int] = []
        self.intervals: dict[int, tuple[float, float]] = {}
        self.binary: dict[int, np.ndarray] = {}

    def _var(self, name: str) -> int:
        if name not in self.index:
            raise UnsupportedEstimate(f"unknown variable {name!r}")
        var_id = self.index[name]
        if var_id not in self.var_ids:
            self.var_ids.append(var_id)
        return var_id

    def add_event(self, prop: Proposition) -> None:
        """Intersect the scope's event with ``prop``."""
        var_id = self._var(prop.variable)
        variable = self.variables[var_id]
        if isinstance(variable, BinaryVariable):
            ind = _binary_indicator(prop, variable)
            self.binary[var_id] = self.binary.get(var_id, np.ones(2)) * ind
        else:
            lo, hi = _interval(prop, variable)
            old_lo, old_hi = self.intervals.get(var_id, variable.get_domain())
            self.intervals[var_id] = (max(lo, old_lo), min(hi, old_hi))

    def add_variable(self, name: str) -> int:
        """Put a variable in scope without restricting it."""
        return self._var(name)

    def axis_weights(self, value_var: int | None = None) -> list[np.ndarray]:
        """Per variable of the scope (``var_ids`` order), a weight per bin.

        The weight is the probability of the event inside the bin, times the
        mean of ``x_value_var`` over the part of the bin in the event for the
        variable ``value_var`` (binary: times its 0/1 value).
        """
        out = []
        for var_id in self.var_ids:
            variable = self.variables[var_id]
            if isinstance(variable, BinaryVariable):
                weight = self.binary.get(var_id, np.ones(2))
                if var_id == value_var:
                    weight = weight * np.asarray([0.0, 1.0])
            else:
                edges = variable_edges(variable, self.max_bins)
                lo, hi = self.intervals.get(var_id, variable.get_domain())
                weight, center = _bin_parts(edges, lo, hi)
                if var_id == value_var:
                    weight = weight * center
            out.append(weight)
        return out

    def table(self, value_var: int | None = None) -> np.ndarray:
        """``1_event`` (times ``x_value_var`` when given) on the scope.

        Each axis is a variable of the scope (in ``var_ids`` order) and each cell
        the average of the weight over the cell, under the uniform density inside
        continuous bins.
        """
        if len(self.var_ids) > MAX_CONDITIONS + 1:
            raise UnsupportedEstimate(
                f"scope of {len(self.var_ids)} variables (at most "
                f"{MAX_CONDITIONS + 1}: the variable and {MAX_CONDITIONS} conditions)"
            )
        weights = self.axis_weights(value_var)
        cells = math.prod(len(w) for w in weights)
        if cells > MAX_TABLE_CELLS:
            raise ValueError(
                f"a table over {[self.variables[v].name for v in self.var_ids]} "
                f"needs {cells:,} cells ({cells * 4 / 2**30:.1f} GiB in float32), "
                f"above the limit of {MAX_TABLE_CELLS:,}: lower max_bins"
            )
        table = np.ones(())
        for weight in weights:
            table = np.multiply.outer(table, weight)
        return table


def _check_expected_value(
    variable: RepoVariable, value: float, estimate_id: str
) -> None:
    low, high = (
        (0.0, 1.0) if isinstance(variable, BinaryVariable) else variable.get_domain()
    )
    if not low <= value <= high:
        raise ValueError(
            f"estimate {estimate_id!r}: expected_value {value} is outside the domain "
            f"[{low}, {high}] of variable {variable.name!r}"
        )


def estimate_to_constraint(
    estimate: object,
    variables: Sequence[RepoVariable],
    index: dict[str, int],
    max_bins: int,
) -> tuple[LinearConstraint, tuple[np.ndarray, np.ndarray]]:
    """The linear moment constraint of one estimate, and its readout tables.

    Returns
    -------
    constraint : jax_smm.LinearConstraint
    readout : (numpy.ndarray, numpy.ndarray)
        ``(num, den)`` with ``E[num] / E[den]`` the estimate's quantity.

    Raises
    ------
    UnsupportedEstimate
        For a form the adapter cannot represent (the message is the skip reason).
    ValueError
        For an expected value outside its variable's domain.
    """
    scope = EventScope(index, variables, max_bins)
    if isinstance(estimate, ProbabilityEstimate):
        scope.add_event(estimate.proposition)
        weights, target = scope.table(), estimate.probability
        readout = (weights, np.ones_like(weights))
    elif isinstance(estimate, ExpectationEstimate):
        var_id = scope.add_variable(estimate.variable)
        _check_expected_value(variables[var_id], estimate.expected_value, estimate.id)
        weights, target = scope.table(value_var=var_id), estimate.expected_value
        readout = (weights, np.ones_like(weights))
    elif isinstance(estimate, ConditionalProbabilityEstimate):
        # W = 1_{C and A} - p 1_C on the union scope; both tables add the
        # condition variables first, then the proposition's, so axes line up.
        _check_conditions(estimate.conditions)
        for condition in estimate.conditions:
            scope.add_event(condition)
        scope.add_variable(estimate.proposition.variable)
        joint = EventScope(index, variables, max_bins)
        for prop in (*estimate.conditions, estimate.proposition):
            joint.add_event(prop)
        readout = (joint.table(), scope.table())
        weights = readout[0] - estimate.probability * readout[1]
        target = 0.0
    elif isinstance(estimate, ConditionalExpectationEstimate):
        _check_conditions(estimate.conditions)
        var_id = scope.add_variable(estimate.variable)
        _check_expected_value(variables[var_id], estimate.expected_value, estimate.id)
        for condition in estimate.conditions:
            scope.add_event(condition)
        readout = (scope.table(value_var=var_id), scope.table())
        weights = readout[0] - estimate.expected_value * readout[1]
        target = 0.0
    else:
        raise UnsupportedEstimate(f"estimate type {type(estimate).__name__}")
    if not np.any(readout[1] > 0):
        raise UnsupportedEstimate(
            "the conditions are impossible (no value in the variables' domains "
            "satisfies all of them)"
        )
    if isinstance(estimate, ProbabilityEstimate) and not np.any(readout[0] > 0):
        raise UnsupportedEstimate(
            "the event is impossible (no value in the variable's domain satisfies it)"
        )
    # Scale each constraint to a unit spread of weights, so multipliers of
    # probabilities and of expectations in large units learn at the same pace
    # (the constraint set is unchanged by a positive scale).
    spread = float(np.ptp(weights))
    scale = spread if spread > 0 else 1.0
    constraint = LinearConstraint(
        tuple(scope.var_ids), weights / scale, target / scale, estimate.id
    )
    return constraint, readout


def _check_conditions(conditions: Sequence[Proposition]) -> None:
    if len(conditions) > MAX_CONDITIONS:
        raise UnsupportedEstimate(
            f"{len(conditions)} conditions (at most {MAX_CONDITIONS} are supported)"
        )


def _canonical_key(constraint: LinearConstraint) -> tuple:
    """A key equal for constraints that define the same set of distributions.

    ``E[W] = c`` is ``E[W - c] = 0``; that table, on the sorted scope, scaled to
    a unit largest entry and signed so its first non-zero entry is positive,
    is invariant to the ways one constraint can be written.
    """
    scope = tuple(sorted(constraint.var_ids))
    g = orient_table(constraint.weights - constraint.target, constraint.var_ids, scope)
    peak = float(np.max(np.abs(g)))
    if peak == 0.0:
        return (scope, "trivial")
    g = g / peak
    if g.flat[np.flatnonzero(np.abs(g) > 10.0**-EQUIVALENCE_DECIMALS)[0]] < 0:
        g = -g
    return (scope, g.shape, (np.round(g, EQUIVALENCE_DECIMALS) + 0.0).tobytes())


def merge_equivalent(
    constraints: Sequence[LinearConstraint],
) -> tuple[tuple[LinearConstraint, ...], tuple[int, ...]]:
    """Collapse constraints that are the same constraint written differently.

    Parameters
    ----------
    constraints : sequence of jax_smm.LinearConstraint

    Returns
    -------
    distinct : tuple of jax_smm.LinearConstraint
        The first constraint of every equivalence class, in first-seen order.
    index : tuple of int
        For every input constraint, the position of its class in ``distinct``.
    """
    classes: dict[tuple, int] = {}
    distinct: list[LinearConstraint] = []
    index = []
    for c in constraints:
        key = _canonical_key(c)
        if key not in classes:
            classes[key] = len(distinct)
            distinct.append(c)
        index.append(classes[key])
    return tuple(distinct), tuple(index)


def adapt(
    variables: Sequence[RepoVariable], estimates: Sequence[object], max_bins: int
) -> AdaptedProblem:
    """Turn repository variables and estimates into a jax_smm problem.

    Parameters
    ----------
    variables : sequence of BinaryVariable or ContinuousVariable
        Unique names.
    estimates : sequence of estimates
        Any of the four estimate types (others are skipped).
    max_bins : int
        Bins of every continuous variable.

    Returns
    -------
    AdaptedProblem
    """
    if int(max_bins) < 1:
        raise ValueError(f"max_bins must be >= 1, got {max_bins!r}")
    names = [v.name for v in variables]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"variables: duplicate names {dup}")
    index = {name: i for i, name in enumerate(names)}
    constraints, ids, readouts, skipped = [], [], [], []
    for estimate in estimates:
        estimate_id = str(getattr(estimate, "id", "?"))
        try:
            constraint, readout = estimate_to_constraint(
                estimate, variables, index, max_bins
            )
        except UnsupportedEstimate as why:
            skipped.append(SkippedConstraint(estimate_id, str(why)))
            continue
        constraints.append(constraint)
        ids.append(estimate_id)
        readouts.append(readout)
    smm_variables = [to_smm_variable(v, max_bins) for v in variables]
    factors = [
        Factor(i, (i,), np.zeros(v.cardinality)) for i, v in enumerate(smm_variables)
    ]
    seen = {frozenset([i]) for i in range(len(variables))}
    for c in constraints:
        scope = frozenset(c.var_ids)
        if scope not in seen:
            seen.add(scope)
            shape = tuple(smm_variables[v].cardinality for v in c.var_ids)
            factors.append(Factor(len(factors), c.var_ids, np.zeros(shape)))
    return AdaptedProblem(
        graph=FactorGraph(smm_variables, factors),
        constraints=tuple(constraints),
        estimate_ids=tuple(ids),
        readouts=tuple(readouts),
        skipped=tuple(skipped),
        bin_edges=tuple(variable_edges(v, max_bins) for v in variables),
        variable_names=tuple(names),
    )
