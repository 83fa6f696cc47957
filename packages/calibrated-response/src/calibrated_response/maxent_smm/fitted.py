"""The fitted distribution: ask it anything, sample it, keep it.

A :class:`FittedDistribution` is the coherent joint distribution that
:meth:`DistributionBuilder.fit` found. It answers probabilities and
expectations of any conjunction of propositions, conditional or not, with a
standard error: exactly, by enumerating the binned joint, when it has at most
``EXACT_STATES`` configurations, and otherwise by Monte Carlo over states
drawn from the fitted model's persistent chains. Inside a bin the density of
a continuous variable is uniform, so each drawn state counts the exact
fraction of its bins that satisfies the query (a Rao-Blackwellized estimate:
no extra noise from thresholds inside bins). The standard error treats the
draws of one chain as one cluster, so correlated snapshots of a chain do not
make it look smaller than it is.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
from pydantic import TypeAdapter

from calibrated_response.io import Writer, write_output_set
from calibrated_response.maxent_smm.adapters import (
    EventScope,
    RepoVariable,
    UnsupportedEstimate,
)
from calibrated_response.models.distribution import HistogramDistribution
from calibrated_response.models.query import EstimateUnion, Proposition
from calibrated_response.models.query_parser import parse_query
from calibrated_response.models.variable import VariableUnion
from jax_smm import MaxEntModel
from jax_smm.diagnostics import enumerate_joint, joint_size
from jax_smm.features import state_to_bins
from jax_smm.model import DEFAULT_CHAINS

FORMAT = "calibrated-response-distribution"
VERSION = 1
EXACT_STATES = 2**16
DEFAULT_SAMPLES = 20_000
FEW_SAMPLES = 30
MODEL_FILE, HEADER_FILE = "model.npz", "distribution.json"
_VARIABLES = TypeAdapter(list[VariableUnion])
_ESTIMATES = TypeAdapter(list[EstimateUnion])


class Answer(NamedTuple):
    """A probability or an expectation with its standard error.

    Attributes
    ----------
    value : float
    stderr : float
        0 for an exact answer.
    method : {"exact", "monte carlo"}
    samples : int
        Draws used (0 for an exact answer).
    """

    value: float
    stderr: float
    method: Literal["exact", "monte carlo"]
    samples: int


class FittedDistribution:
    """The maximum-entropy distribution of a set of estimates.

    Made by :meth:`DistributionBuilder.fit` or :meth:`load`.

    Parameters
    ----------
    variables : sequence of BinaryVariable or ContinuousVariable
    estimates : sequence of estimates
        The estimates it was fitted to.
    model : jax_smm.MaxEntModel
        The fitted factor graph over the binned variables, with its chains.
    max_bins : int
        Bins of every continuous variable.
    marginals : dict of str to HistogramDistribution
        Every variable's marginal (read out from the chains at fit time).
    report : list of dict
        One row per estimate: ``id``, ``estimate_type``, ``target``,
        ``achieved``, ``error``, ``tolerance``, ``met`` and ``skipped`` (the
        reason an estimate was not used, else ``None``).
    info : dict, optional
        Diagnostics of the fit (JSON-serializable), kept with the model.
    """

    def __init__(
        self,
        variables: Sequence[RepoVariable],
        estimates: Sequence[Any],
        model: MaxEntModel,
        max_bins: int,
        marginals: dict[str, HistogramDistribution],
        report: list[dict[str, Any]],
        info: dict[str, Any] | None = None,
    ) -> None:
        self.variables = list(variables)
        self.estimates = list(estimates)
        self.model = model
        self.max_bins = int(max_bins)
        self._marginals = dict(marginals)
        self._report = [dict(row) for row in report]
        self.info = {} if info is None else dict(info)
        self._index = {v.name: i for i, v in enumerate(self.variables)}
        if model.graph.num_vars != len(self.variables):
            raise ValueError(
                f"model has {model.graph.num_vars} variables, variables lists "
                f"{len(self.variables)}"
            )
        self._exact: tuple[np.ndarray, np.ndarray] | None = None
        self._draws: dict[tuple[int, int], np.ndarray] = {}

    # ------------------------------------------------------------------ look
    @property
    def names(self) -> list[str]:
        """Variable names, in order."""
        return [v.name for v in self.variables]

    def marginal(self, name: str) -> HistogramDistribution:
        """The marginal histogram of one variable (binary: edges 0, 0.5, 1)."""
        self._variable(name)
        return self._marginals[name]

    def marginals(self) -> dict[str, HistogramDistribution]:
        """Every variable's marginal histogram."""
        return dict(self._marginals)

    def constraint_report(self) -> list[dict[str, Any]]:
        """Stated against achieved value of every estimate (copies of the rows)."""
        return [dict(row) for row in self._report]

    def unmet(self) -> list[dict[str, Any]]:
        """Rows of the estimates the fit misses by more than their tolerance."""
        return [row for row in self._report if row["met"] is False]

    @property
    def converged(self) -> bool:
        """Whether every used estimate is met within its tolerance."""
        return not self.unmet()

    # ---------------------------------------------------------------- sample
    def sample(self, n: int, seed: int = 0) -> dict[str, np.ndarray]:
        """``n`` joint draws in the user's units.

        Parameters
        ----------
        n : int
            At least 1.
        seed : int

        Returns
        -------
        dict of str to numpy.ndarray
            Per variable, ``bool[n]`` (binary) or ``float64[n]`` (continuous:
            uniform inside the drawn bin, as the binned model's density is).
        """
        states = self._states(n, seed)
        plan = self.model.graph.plan
        out = {}
        for i, variable in enumerate(self.variables):
            if i in plan.cat_vars:
                column = states["cat"][:, plan.cat_vars.index(i)]
                out[variable.name] = column.astype(bool)
            else:
                column = states["cont"][:, plan.cont_vars.index(i)]
                out[variable.name] = column.astype(np.float64)
        return out

    # ----------------------------------------------------------------- query
    def probability(
        self,
        propositions: Proposition | Sequence[Proposition],
        given: Proposition | Sequence[Proposition] = (),
        *,
        method: Literal["auto", "exact", "monte carlo"] = "auto",
        n: int = DEFAULT_SAMPLES,
        seed: int = 0,
    ) -> Answer:
        """``P(all propositions | all of given)``.

        Parameters
        ----------
        propositions : Proposition or sequence of Proposition
            Read as a conjunction.
        given : Proposition or sequence of Proposition
            Conditions, read as a conjunction (empty: unconditional).
        method : {"auto", "exact", "monte carlo"}
            ``"auto"`` is exact for joints of at most ``EXACT_STATES``
            configurations.
        n, seed
            Draws and seed of a Monte Carlo answer.

        Raises
        ------
        ValueError
            An unknown variable, a proposition that does not suit its
            variable, or conditions of probability 0 under the model.
        """
        props = _as_list(propositions, "propositions")
        if not props:
            raise ValueError("propositions must hold at least one proposition")
        conditions = _as_list(given, "given")
        event = self._scope([*props, *conditions])
        condition = self._scope(conditions)
        return self._ratio(event, condition, None, method, n, seed, conditions)

    def expectation(
        self,
        variable: str,
        given: Proposition | Sequence[Proposition] = (),
        *,
        method: Literal["auto", "exact", "monte carlo"] = "auto",
        n: int = DEFAULT_SAMPLES,
        seed: int = 0,
    ) -> Answer:
        """``E[variable | all of given]`` (a binary variable counts as 0/1).

        Parameters and errors as :meth:`probability`.
        """
        var_id = self._variable(variable)
        conditions = _as_list(given, "given")
        scope = self._scope(conditions)
        scope.add_variable(variable)
        return self._ratio(scope, scope, var_id, method, n, seed, conditions)

    def query(self, text: str, **kwargs: Any) -> Answer:
        """Answer a query in the grammar of :mod:`.models.query_parser`.

        ``P(temp > 20 | rain)`` or ``E(umbrella_sales | rain, wind)``; keyword
        arguments go to :meth:`probability` / :meth:`expectation`.
        """
        parsed = parse_query(text, self.variables)
        if parsed.kind == "probability":
            return self.probability(parsed.propositions, parsed.given, **kwargs)
        return self.expectation(parsed.variable, parsed.given, **kwargs)

    # ------------------------------------------------------------ save, load
    def writers(self) -> dict[str, Writer]:
        """The files of :meth:`save`, for a caller that writes a larger set."""
        header = {
            "format": FORMAT,
            "version": VERSION,
            "max_bins": self.max_bins,
            "variables": _VARIABLES.dump_python(self.variables, mode="json"),
            "estimates": _ESTIMATES.dump_python(self.estimates, mode="json"),
            "marginals": {
                name: h.model_dump(mode="json") for name, h in self._marginals.items()
            },
            "report": self._report,
            "info": self.info,
        }
        text = json.dumps(header, indent=1) + "\n"
        return {
            MODEL_FILE: self.model.save,
            HEADER_FILE: lambda tmp: tmp.write_text(text, encoding="utf-8"),
        }

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``model.npz`` and ``distribution.json`` into ``directory``.

        Both files are written to a temporary folder first and moved in only
        when both are complete.
        """
        return write_output_set(directory, self.writers())

    @classmethod
    def load(cls, directory: str | os.PathLike) -> FittedDistribution:
        """Read a distribution written by :meth:`save`.

        Raises
        ------
        ValueError
            Naming the file, when it is missing, corrupted, or of another
            format or version.
        """
        directory = Path(directory)
        path = directory / HEADER_FILE
        try:
            header = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ValueError(
                f"{str(directory)!r} holds no fitted distribution ({HEADER_FILE} "
                "is missing)"
            ) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"{str(path)!r} is not readable JSON ({err})") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise ValueError(f"{str(path)!r} is not a {FORMAT} file")
        if header.get("version") != VERSION:
            raise ValueError(
                f"{str(path)!r} has {FORMAT} version {header.get('version')!r}; "
                f"this calibrated_response reads version {VERSION}"
            )
        try:
            variables = _VARIABLES.validate_python(header["variables"])
            estimates = _ESTIMATES.validate_python(header["estimates"])
            marginals = {
                name: HistogramDistribution.model_validate(h)
                for name, h in header["marginals"].items()
            }
            report, info, max_bins = (
                header["report"],
                header["info"],
                header["max_bins"],
            )
        except (KeyError, ValueError) as err:
            raise ValueError(f"{str(path)!r} is corrupted ({err})") from None
        try:
            model = MaxEntModel.load(directory / MODEL_FILE)
        except FileNotFoundError:
            raise ValueError(
                f"{str(directory / MODEL_FILE)!r} is missing beside {HEADER_FILE}"
            ) from None
        return cls(variables, estimates, model, max_bins, marginals, report, info)

    def __repr__(self) -> str:
        return (
            f"FittedDistribution({len(self.variables)} variables, "
            f"{len(self.estimates)} estimates, converged={self.converged})"
        )

    # -------------------------------------------------------------- internal
    def _variable(self, name: str) -> int:
        if not isinstance(name, str) or name not in self._index:
            raise ValueError(
                f"unknown variable {name!r}; known: {', '.join(self.names)}"
            )
        return self._index[name]

    def _scope(self, props: Sequence[Proposition]) -> EventScope:
        scope = EventScope(self._index, self.variables, self.max_bins)
        for prop in props:
            self._variable(prop.variable)
            try:
                scope.add_event(prop)
            except UnsupportedEstimate as why:
                raise ValueError(f"proposition {prop}: {why}") from None
        return scope

    def _states(self, n: int, seed: int) -> dict[str, np.ndarray]:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        states = self.model.sample(n, seed)
        return {k: np.asarray(v) for k, v in states.items()}

    def _bins(self, n: int, seed: int) -> np.ndarray:
        """``int[n, n_vars]`` bins of ``n`` draws (cached per ``(n, seed)``)."""
        if (n, seed) not in self._draws:
            states = self._states(n, seed)
            self._draws[(n, seed)] = np.asarray(
                state_to_bins(self.model.graph.plan, states)
            )
        return self._draws[(n, seed)]

    def _enumerated(self) -> tuple[np.ndarray, np.ndarray]:
        if self._exact is None:
            self._exact = enumerate_joint(self.model.graph)
        return self._exact

    def _ratio(
        self,
        numerator: EventScope,
        denominator: EventScope,
        value_var: int | None,
        method: str,
        n: int,
        seed: int,
        conditions: Sequence[Proposition],
    ) -> Answer:
        """``E[num] / E[den]`` of two scopes' weights, exactly or by sampling."""
        if method not in ("auto", "exact", "monte carlo"):
            raise ValueError(
                f"method must be 'auto', 'exact' or 'monte carlo', got {method!r}"
            )
        size = joint_size(self.model.graph)
        exact = method == "exact" or (method == "auto" and size <= EXACT_STATES)
        if exact:
            configs, probs = self._enumerated()
        else:
            configs, probs = self._bins(n, seed), None
        num = _weight(numerator, configs, value_var)
        den = _weight(denominator, configs, None)
        described = " and ".join(str(c) for c in conditions) or "true"
        if exact:
            mass = float(probs @ den)
            if mass <= 0:
                raise ValueError(
                    f"the conditions ({described}) have probability 0 under the model"
                )
            return Answer(float(probs @ num) / mass, 0.0, "exact", 0)
        total = float(den.sum())
        if total <= 0:
            raise ValueError(
                f"no draw satisfies the conditions ({described}): their probability "
                f"is below about 1/n = {1 / n:.1e}; raise n"
            )
        if total < FEW_SAMPLES:
            warnings.warn(
                f"the conditions ({described}) hold in only about {total:.0f} of {n} "
                "draws; the answer is rough (raise n)",
                RuntimeWarning,
                stacklevel=3,
            )
        value = float(num.sum()) / total
        chains = min(n, self.model.num_chains or DEFAULT_CHAINS)
        residual = np.bincount(
            np.arange(n) % chains, weights=num - value * den, minlength=chains
        )
        scale = chains / (chains - 1) if chains > 1 else math.inf
        stderr = math.sqrt(scale * float(residual @ residual)) / total
        return Answer(value, stderr, "monte carlo", n)


def _weight(
    scope: EventScope, configs: np.ndarray, value_var: int | None
) -> np.ndarray:
    """Per configuration, the product of the scope's per-variable bin weights."""
    weight = np.ones(len(configs))
    for var_id, axis in zip(scope.var_ids, scope.axis_weights(value_var), strict=True):
        weight = weight * axis[configs[:, var_id]]
    return weight


def _as_list(props: Proposition | Sequence[Proposition], name: str) -> list:
    """A proposition or a sequence of them as a list (strings refused)."""
    if isinstance(props, str):
        raise TypeError(
            f"{name} must be Proposition objects; parse text with query() instead"
        )
    if hasattr(props, "proposition_type"):
        return [props]
    out = list(props)
    for prop in out:
        if not hasattr(prop, "proposition_type"):
            raise TypeError(
                f"{name} must hold EqualityProposition / InequalityProposition, got "
                f"{type(prop).__name__}"
            )
    return out
