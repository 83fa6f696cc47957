"""The periodic-grid Potts model of ``bench_sampler.py`` and its sanity checks.

The model (random N(0, 0.5^2) unary and pair tables on a torus), the exact
log-potential the samplers are checked against, and the statistical comparison
of the single-site marginals of two samplers' final states.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from peers.jax_smm_gibbs import OursSampler
    from peers.thrml_gibbs import ThrmlSampler

PARAM_STD = 0.5
NUM_NEIGHBORS = 4
ENERGY_CHECK_STATES = 4
ENERGY_ATOL = 1e-2
MIN_MARGINAL_CORRELATION = 0.7


@dataclass(frozen=True)
class PottsModel:
    """A Potts model with random unary and pair tables on a periodic square grid.

    ``log p(x) = sum_i unary[i, x_i] + sum_e pair[e, x_a, x_b] + const`` with
    ``(a, b) = edges[e]`` and site ``i = row * side + column``.

    Attributes
    ----------
    side : int
        Grid side (even, so that the checkerboard coloring is proper).
    num_states : int
        ``K``, the number of states of every site.
    unary : float32[n, K]
        One log-potential vector per site.
    edges : int64[E, 2]
        The grid edges: every site to its right and to its lower neighbor.
    pair : float32[E, K, K]
        One log-potential table per edge, ``[state of a, state of b]``.
    """

    side: int
    num_states: int
    unary: np.ndarray
    edges: np.ndarray
    pair: np.ndarray

    @property
    def num_sites(self) -> int:
        """Number of sites ``n``."""
        return self.side * self.side

    def color_sites(self) -> tuple[np.ndarray, np.ndarray]:
        """Sites of the two checkerboard colors, ``(row + column) % 2``."""
        rows, cols = np.divmod(np.arange(self.num_sites), self.side)
        color = (rows + cols) % 2
        return np.flatnonzero(color == 0), np.flatnonzero(color == 1)

    def log_potential(self, states: np.ndarray) -> np.ndarray:
        """Exact log-potential (no normalization) of ``int[B, n]`` states, float64."""
        states = np.asarray(states, np.intp)
        sites = np.arange(self.num_sites)
        unary = self.unary.astype(np.float64)[sites, states].sum(axis=-1)
        first, second = states[:, self.edges[:, 0]], states[:, self.edges[:, 1]]
        edge_ids = np.arange(len(self.edges))
        pair = self.pair.astype(np.float64)[edge_ids, first, second].sum(axis=-1)
        return unary + pair


def make_potts(side: int, num_states: int, seed: int) -> PottsModel:
    """Draw a periodic-grid Potts model with N(0, 0.5^2) unary and pair entries.

    Parameters
    ----------
    side : int
        Grid side; must be even.
    num_states : int
        Number of states ``K``.
    seed : int
        Base seed; the generator is seeded with ``(seed, num_states)``.

    Returns
    -------
    PottsModel
    """
    if side % 2 or side < 4:
        raise ValueError(f"side must be even and >= 4, got {side}")
    n = side * side
    rows, cols = np.divmod(np.arange(n), side)
    right = rows * side + (cols + 1) % side
    down = ((rows + 1) % side) * side + cols
    sites = np.arange(n)
    edges = np.concatenate(
        [np.stack([sites, right], axis=1), np.stack([sites, down], axis=1)]
    ).astype(np.int64)
    rng = np.random.default_rng((seed, num_states))
    unary = rng.normal(0.0, PARAM_STD, (n, num_states)).astype(np.float32)
    pair = rng.normal(0.0, PARAM_STD, (len(edges), num_states, num_states))
    return PottsModel(side, num_states, unary, edges, pair.astype(np.float32))


def oriented_incidences(model: PottsModel) -> tuple[np.ndarray, np.ndarray]:
    """Neighbors of every site and the pair tables oriented ``[own, other]``.

    Returns
    -------
    other : intp[n, 4]
        The neighboring site of each incidence.
    tables : float32[n, 4, K, K]
        ``tables[i, d, own state, other state]``.
    """
    n, k = model.num_sites, model.num_states
    other = np.full((n, NUM_NEIGHBORS), -1, np.intp)
    tables = np.zeros((n, NUM_NEIGHBORS, k, k), np.float32)
    slot = np.zeros(n, np.intp)
    for e, (a, b) in enumerate(model.edges):
        other[a, slot[a]], tables[a, slot[a]] = b, model.pair[e]
        other[b, slot[b]], tables[b, slot[b]] = a, model.pair[e].T
        slot[a] += 1
        slot[b] += 1
    if not np.all(slot == NUM_NEIGHBORS):
        raise ValueError("every site of the torus must have exactly 4 neighbors")
    return other, tables


def check_parameterization(
    model: PottsModel,
    ours: OursSampler | None,
    peer: ThrmlSampler | None,
    seed: int,
) -> dict[str, float]:
    """Compare log-potentials of random states with the NumPy reference.

    jax_smm must reproduce ``model.log_potential`` exactly; thrml's ``-energy``
    must do so up to one additive constant (taken from the first state).

    Returns
    -------
    dict
        Largest absolute error of each implementation checked.

    Raises
    ------
    SystemExit
        If an error exceeds the tolerance.
    """
    rng = np.random.default_rng((seed, model.num_states, 1))
    shape = (ENERGY_CHECK_STATES, model.num_sites)
    states = rng.integers(0, model.num_states, size=shape)
    reference = model.log_potential(states)
    errors: dict[str, float] = {}
    if ours is not None:
        errors["ours"] = float(np.max(np.abs(ours.log_potential(states) - reference)))
    if peer is not None:
        shifted = -peer.energy(states)
        shifted -= shifted[0] - reference[0]
        errors["thrml"] = float(np.max(np.abs(shifted - reference)))
    bad = {name: err for name, err in errors.items() if not err <= ENERGY_ATOL}
    if bad:
        raise SystemExit(
            f"K={model.num_states}: log-potential mismatch against the reference "
            f"(max abs error {bad}, tolerance {ENERGY_ATOL}); not writing results"
        )
    return errors


def site_marginals(states: np.ndarray, num_states: int) -> np.ndarray:
    """Fraction of chains in each state, ``float64[n, K]`` (``[n, 1]`` if K = 2)."""
    counts = np.stack([(states == k).mean(axis=0) for k in range(num_states)], 1)
    return counts[:, 1:] if num_states == 2 else counts


def compare_marginals(
    first: np.ndarray, second: np.ndarray, num_states: int
) -> dict[str, Any]:
    """Statistical agreement of the single-site marginals of two chain batches.

    Passes when the RMS difference of the per-site state frequencies is within
    1.5 times (plus 0.01) what independent sampling noise alone gives, and the
    frequencies correlate across sites by at least
    ``MIN_MARGINAL_CORRELATION`` (a sampler that does not move, or samples the
    wrong model, fails both).

    Parameters
    ----------
    first, second : int[chains, n]
        Final states of two samplers of the same model.
    num_states : int

    Returns
    -------
    dict
        ``rms``, ``expected_rms``, ``correlation`` and ``ok``.
    """
    p, q = site_marginals(first, num_states), site_marginals(second, num_states)
    n_p, n_q = first.shape[0], second.shape[0]
    pooled = (p * n_p + q * n_q) / (n_p + n_q)
    expected = float(np.sqrt(np.mean(pooled * (1 - pooled) * (1 / n_p + 1 / n_q))))
    rms = float(np.sqrt(np.mean((p - q) ** 2)))
    correlation = float(np.corrcoef(p.ravel(), q.ravel())[0, 1])
    ok = rms <= 1.5 * expected + 0.01 and correlation >= MIN_MARGINAL_CORRELATION
    return {
        "rms": rms,
        "expected_rms": expected,
        "correlation": correlation,
        "ok": bool(ok),
    }
