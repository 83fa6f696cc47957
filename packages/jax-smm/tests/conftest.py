"""Shared test helpers: small graphs and a naive reference energy."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from jax_smm import Factor, FactorGraph, Variable


def random_graph(
    cards: list[int],
    scopes: list[tuple[int, ...]],
    seed: int = 0,
    scale: float = 1.0,
    continuous: dict[int, tuple[float, float]] | None = None,
) -> FactorGraph:
    """A graph with the given cardinalities and factor scopes, random theta.

    ``continuous`` maps a variable id to ``(low, high)``: that variable becomes
    bounded continuous with ``cards[i]`` bins.
    """
    rng = np.random.default_rng(seed)
    continuous = continuous or {}
    variables = [
        Variable.continuous(f"x{i}", *continuous[i], num_bins=k)
        if i in continuous
        else Variable.categorical(f"x{i}", k)
        for i, k in enumerate(cards)
    ]
    factors = [
        Factor(i, scope, scale * rng.normal(size=tuple(cards[v] for v in scope)))
        for i, scope in enumerate(scopes)
    ]
    return FactorGraph(variables, factors)


def naive_energy(graph: FactorGraph, bins: np.ndarray) -> float:
    """sum_f theta_f[x_f] with plain Python indexing (independent reference)."""
    return float(
        sum(
            np.asarray(f.theta)[tuple(int(bins[v]) for v in f.var_ids)]
            for f in graph.factors
        )
    )


def brute_force_marginals(graph: FactorGraph) -> dict[int, np.ndarray]:
    """Factor marginals by itertools enumeration and naive energies."""
    cards = [v.cardinality for v in graph.variables]
    configs = list(itertools.product(*[range(k) for k in cards]))
    energies = np.array([naive_energy(graph, np.array(c)) for c in configs])
    probs = np.exp(energies - energies.max())
    probs /= probs.sum()
    out = {f.id: np.zeros(f.table_shape) for f in graph.factors}
    for c, p in zip(configs, probs, strict=True):
        for f in graph.factors:
            out[f.id][tuple(c[v] for v in f.var_ids)] += p
    return out


@pytest.fixture
def mixed_graph() -> FactorGraph:
    """Mixed cardinalities, one continuous variable, a triple factor."""
    return random_graph(
        [2, 3, 4, 3, 2],
        [(0,), (1,), (2,), (3,), (4,), (0, 1), (1, 2), (2, 3), (3, 4), (0, 2, 4)],
        seed=3,
        continuous={2: (-1.0, 3.0)},
    )


@pytest.fixture(scope="session")
def make_graph():
    """The :func:`random_graph` builder."""
    return random_graph


@pytest.fixture
def reference():
    """Independent references: naive energy and brute-force marginals."""

    class Reference:
        energy = staticmethod(naive_energy)
        marginals = staticmethod(brute_force_marginals)

    return Reference
