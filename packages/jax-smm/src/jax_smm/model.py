"""A fitted maximum-entropy model you can keep, query and sample.

:class:`MaxEntModel` wraps a :class:`~jax_smm.graph.FactorGraph` (its tables
are the model ``p(x) ∝ exp(sum_f theta_f[x_f])``) together with the persistent
chains of the fit that produced it, so sampling starts from states that are
already close to the model instead of from scratch::

    graph, history = fit_smm(graph, targets, config)
    model = MaxEntModel.from_fit(graph, history)
    samples = model.sample(10_000, jax.random.key(0))
    model.save("model.npz")
    model = MaxEntModel.load("model.npz")
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jax_smm.checks import (
    as_key,
    check_choice,
    check_fits_in_memory,
    check_int,
    format_bytes,
)
from jax_smm.compile import Plan
from jax_smm.config import SMMConfig, as_config
from jax_smm.couplings import coupling_scores, top_couplings
from jax_smm.diagnostics import MAX_ENUMERATION_STATES, exact_marginals, joint_size
from jax_smm.energy import energy, extended_params
from jax_smm.features import State, estimate_moments, validate_states
from jax_smm.graph import FactorGraph
from jax_smm.mcmc.buffer import (
    KernelLike,
    bytes_per_chain,
    random_states,
    resolve_kernel,
)
from jax_smm.mcmc.hybrid import HybridGibbs
from jax_smm.persistence import load_model, save_model
from jax_smm.training import FitHistory

AUTO_EXACT_STATES = 2**16
DEFAULT_CHAINS = 1024
MARGINAL_METHODS = ("auto", "exact", "sample")


@partial(jax.jit, static_argnames=("kernel", "rounds"))
def _draw(
    plan: Plan,
    kernel: HybridGibbs,
    theta_ext: jax.Array,
    states: State,
    rng_key: jax.Array,
    burn_in: jax.Array,
    sweeps: jax.Array,
    rounds: int,
) -> State:
    """``burn_in`` sweeps, then ``rounds`` snapshots ``sweeps`` sweeps apart.

    One loop of single sweeps (one copy of the kernel in the program, and
    ``burn_in`` and ``sweeps`` traced, so changing them does not recompile);
    after each sweep the states are written to their snapshot row, or the row
    is rewritten unchanged when the sweep is not a snapshot.

    Returns
    -------
    dict
        States shaped ``(rounds, chains, ...)``.
    """
    out = jax.tree.map(lambda s: jnp.zeros((rounds, *s.shape), s.dtype), states)

    def sweep(t: jax.Array, carry: tuple[State, State]) -> tuple[State, State]:
        states, out = carry
        states, _, _ = kernel.step(
            plan, theta_ext, states, jax.random.fold_in(rng_key, t), 1
        )
        done = t + 1 - burn_in  # sweeps since the burn-in
        keep = (done > 0) & (done % sweeps == 0)
        row = jnp.clip(done // sweeps - 1, 0, rounds - 1)
        out = jax.tree.map(
            lambda o, s: o.at[row].set(jnp.where(keep, s, o[row])), out, states
        )
        return states, out

    _, out = lax.fori_loop(0, burn_in + rounds * sweeps, sweep, (states, out))
    return out


class MaxEntModel:
    """A fitted factor graph with its stored chains, ready to sample and query.

    Parameters
    ----------
    graph : FactorGraph
        The model; its tables are the log-potentials.
    states : dict, optional
        Chains to warm-start sampling from, ``{"cat": int[C, n_cat], "cont":
        float[C, n_cont]}`` (e.g. the final chains of the fit). Without them,
        sampling starts from uniformly random states.
    config : SMMConfig or dict, optional
        The settings of the fit, kept for the record (saved with the model).

    Attributes
    ----------
    graph : FactorGraph
    states : dict or None
        The stored chains (read-only NumPy arrays); sampling never changes them.
    config : SMMConfig or None
    """

    def __init__(
        self,
        graph: FactorGraph,
        states: State | None = None,
        config: SMMConfig | Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(graph, FactorGraph):
            raise ValueError(f"graph must be a FactorGraph, got {type(graph).__name__}")
        self.graph = graph
        self.states = None if states is None else _frozen_states(graph, states)
        self.config = None if config is None else as_config(config)

    @classmethod
    def from_fit(cls, graph: FactorGraph, history: FitHistory) -> MaxEntModel:
        """The model of a fit: ``MaxEntModel.from_fit(*fit_smm(...))``.

        Keeps the fit's final chains (``history.final_states``) and config.
        """
        if not isinstance(history, FitHistory):
            raise ValueError(
                "history must be the FitHistory returned by fit_smm, got "
                f"{type(history).__name__}"
            )
        return cls(graph, history.final_states, history.config)

    @property
    def num_chains(self) -> int:
        """Number of stored chains (0 if none)."""
        return 0 if self.states is None else int(self.states["cat"].shape[0])

    def sample(
        self,
        n: int,
        rng_key: jax.Array | int,
        sweeps: int = 5,
        burn_in: int = 100,
        initial_states: State | None = None,
        kernel: KernelLike = "chromatic",
    ) -> State:
        """Draw ``n`` states from the model by Gibbs sampling.

        The chains start from ``initial_states`` if given, else from the stored
        chains, else (no stored chains) from ``min(n, 1024)`` uniformly random
        states. With ``C`` starting chains:

        * ``n <= C``: ``n`` of them, picked at random without replacement, each
          run ``burn_in + sweeps`` sweeps; every sample comes from a different
          chain;
        * ``n > C``: all ``C`` chains run ``burn_in`` sweeps, then one snapshot
          of every chain is kept every ``sweeps`` sweeps (thinning) until ``n``
          states are collected (round by round, in chain order).

        Every chain is an exact Gibbs chain of the model, so once it has mixed
        each snapshot is a draw from the model; snapshots of one chain are
        correlated (less so for larger ``sweeps``), which widens the error of
        averages but does not bias them. Stored chains of a fit are already
        near the model, so a short ``burn_in`` suffices; from random states,
        slowly mixing models need a longer one. The stored chains are not
        changed, so the same rng_key gives the same samples.

        Parameters
        ----------
        n : int
            Number of samples (at least 1).
        rng_key : jax.Array or int
            A PRNG key or an integer seed.
        sweeps : int
            Sweeps between two snapshots of a chain (at least 1).
        burn_in : int
            Sweeps before the first snapshot (at least 0), after ``sweeps``.
        initial_states : dict, optional
            Chains to start from instead of the stored ones.
        kernel : {"chromatic", "sequential"} or kernel
            The Gibbs kernel.

        Returns
        -------
        dict
            ``{"cat": int32[n, n_cat], "cont": float32[n, n_cont]}``.

        Raises
        ------
        ValueError
            For a bad argument, or when the chains and the ``n`` samples cannot
            fit in memory (the estimate is in the message).
        """
        n = check_int("n", n, 1)
        sweeps = check_int("sweeps", sweeps, 1)
        burn_in = check_int("burn_in", burn_in, 0)
        rng_key = as_key("rng_key", rng_key)
        resolved = resolve_kernel(kernel)
        if initial_states is not None:
            validate_states(self.graph, initial_states, "initial_states")
        start = self.states if initial_states is None else initial_states
        plan = self.graph.plan
        stored = DEFAULT_CHAINS if start is None else int(np.shape(start["cat"])[0])
        chains = min(n, stored)
        rounds = math.ceil(n / chains)
        state_bytes = 4 * (self.graph.n_cat + self.graph.n_cont)
        per_chain = bytes_per_chain(plan)
        check_fits_in_memory(
            f"n = {n} samples ({chains} chains x {rounds} snapshots, about "
            f"{format_bytes(per_chain)} per chain)",
            chains * per_chain + rounds * chains * state_bytes,
        )
        pick_rng_key, run_rng_key = jax.random.split(rng_key)
        if start is None:
            states = random_states(plan, chains, pick_rng_key)
        else:
            pick = jax.random.permutation(pick_rng_key, stored)[:chains]
            states = {
                "cat": jnp.asarray(start["cat"], jnp.int32)[pick],
                "cont": jnp.asarray(
                    start.get("cont", np.zeros((stored, 0))), jnp.float32
                )[pick],
            }
        theta_ext = extended_params(self.graph.theta_groups)
        out = _draw(
            plan,
            resolved,
            theta_ext,
            states,
            run_rng_key,
            jnp.int32(burn_in),
            jnp.int32(sweeps),
            rounds,
        )
        return {
            name: value.reshape(rounds * chains, *value.shape[2:])[:n]
            for name, value in out.items()
        }

    def marginals(
        self,
        method: Literal["auto", "exact", "sample"] = "auto",
        n: int = 10_000,
        rng_key: jax.Array | int = 0,
    ) -> dict[int, np.ndarray]:
        """Marginal table of every factor under the model.

        Parameters
        ----------
        method : {"auto", "exact", "sample"}
            ``"exact"`` enumerates every joint configuration (graphs of up to
            ``2**20`` joint states and bins); ``"sample"`` counts ``n`` draws
            of :meth:`sample` (error about ``sqrt(p (1 - p) / n)`` per cell for
            independent draws); ``"auto"`` is ``"exact"`` for up to ``2**16``
            joint states and ``"sample"`` above.
        n : int
            Number of samples (``"sample"`` only).
        rng_key : jax.Array or int
            Key or seed of the samples (``"sample"`` only).

        Returns
        -------
        dict of int to numpy.ndarray
            ``{factor_id: table}``, each shaped like the factor's theta and
            summing to 1.
        """
        method = check_choice("method", method, MARGINAL_METHODS)
        size = joint_size(self.graph)
        if method == "auto":
            method = "exact" if size <= AUTO_EXACT_STATES else "sample"
        if method == "exact":
            if size > MAX_ENUMERATION_STATES:
                raise ValueError(
                    f"method='exact' enumerates the {size} joint states of the "
                    f"graph, more than the limit of {MAX_ENUMERATION_STATES}; use "
                    "method='sample'"
                )
            tables = exact_marginals(self.graph)
        else:
            tables = estimate_moments(self.graph, self.sample(n, rng_key))
        return {fid: np.asarray(table) for fid, table in tables.items()}

    def energy(self, states: State) -> jax.Array:
        """Log-potential ``sum_f theta_f[x_f]`` of states (``p ∝ exp(energy)``).

        Parameters
        ----------
        states : dict
            ``{"cat": int[..., n_cat], "cont": float[..., n_cont]}``, checked
            against the graph (shape, dtype and range).
        """
        return energy(self.graph, states)

    def coupling_scores(self, apc: bool = True) -> np.ndarray:
        """Pair coupling strengths as DCA ranks contacts.

        The Frobenius norm of each pairwise table in the zero-sum gauge, with
        the average product correction when ``apc`` (see
        :func:`jax_smm.couplings.coupling_scores`).

        Returns
        -------
        numpy.ndarray
            ``float64[n_vars, n_vars]``, symmetric; 0 on the diagonal and for
            pairs without a pair factor.
        """
        return coupling_scores(self.graph, apc)

    def top_couplings(
        self, k: int = 10, apc: bool = True
    ) -> list[tuple[int, int, float]]:
        """The ``k`` strongest pairs as ``(i, j, score)``, ``i < j``, best first."""
        return top_couplings(self.graph, k, apc)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the model to one versioned file, atomically.

        See :mod:`jax_smm.persistence` for the format (an ``.npz`` with a JSON
        header: variables, factor scopes, config; the tables; the chains).
        """
        return save_model(path, self.graph, self.states, self.config)

    @classmethod
    def load(cls, path: str | os.PathLike) -> MaxEntModel:
        """Read a model written by :meth:`save`.

        Raises
        ------
        FileNotFoundError
            If ``path`` does not exist.
        ValueError
            Naming the file, if it is corrupted or of another format or version.
        """
        graph, states, config = load_model(path)
        return cls(graph, states, config)

    def __repr__(self) -> str:
        return f"MaxEntModel({self.graph!r}, {self.num_chains} stored chains)"


def _frozen_states(graph: FactorGraph, states: State) -> State:
    """Validated, read-only NumPy copies of chain states."""
    validate_states(graph, states, "states")
    cat = np.array(states["cat"], np.int32)
    cont = np.array(
        states.get("cont", np.zeros((cat.shape[0], 0))), np.float32
    ).reshape(cat.shape[0], graph.n_cont)
    for array in (cat, cont):
        array.flags.writeable = False
    return {"cat": cat, "cont": cont}
