"""Shared fixtures: hierarchical structures, their hand-built masks, simulators.

The root ``pyproject.toml`` runs pytest with ``--import-mode=importlib``, so
every shared helper is a fixture (test modules cannot import each other).

Hand-built expectations never call the package: masks are written entry by
entry with numpy, and ``reference_mask`` decides every (row, column) token
pair on its own instead of applying the rules block by block.
"""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

N_SAMPLES = 4
GROUPS = 5
PER_GROUP = 5


@pytest.fixture
def hierarchical_gaussian_spec():
    """Independence spec from hierarchical_gaussian.py."""
    return {
        "local": ["obs", "theta"],
        "cross": [("mu", "obs"), ("obs", "mu")],
        "cross_local": [("theta", "obs", (0, 0))],
    }


@pytest.fixture
def simple_pytree():
    """Simple 2-level hierarchical structure."""
    return {
        "mu": jnp.ones((1, 1, 1)),
        "theta": jnp.ones((1, 5, 1)),
        "obs": jnp.ones((1, 5, 3)),
    }


@pytest.fixture
def hierarchical_gaussian_data():
    """``mu (4,1,1)``, ``theta (4,5,1)``, ``obs (4,5,5,1)`` with distinct values."""
    rng = np.random.default_rng(0)
    return {
        "mu": rng.normal(size=(N_SAMPLES, 1, 1)).astype(np.float32),
        "theta": rng.normal(size=(N_SAMPLES, GROUPS, 1)).astype(np.float32),
        "obs": rng.normal(size=(N_SAMPLES, GROUPS, PER_GROUP, 1)).astype(np.float32),
    }


@pytest.fixture
def hierarchical_gaussian_mask():
    """The 31x31 self-attention mask of the hierarchical Gaussian, by hand.

    Tokens: ``mu`` 0, ``theta_i`` 1 + i, ``obs_ij`` 6 + 5 i + j.
    """
    n = 1 + GROUPS + GROUPS * PER_GROUP
    mask = np.zeros((n, n), dtype=bool)
    mu, theta = 0, [1 + i for i in range(GROUPS)]

    def obs(i, j):
        return 1 + GROUPS + PER_GROUP * i + j

    mask[mu, mu] = True  # mu is not local: it sees itself
    for i in range(GROUPS):
        mask[mu, theta[i]] = True  # no rule between mu and theta
        mask[theta[i], mu] = True
        for j in range(PER_GROUP):
            mask[theta[i], obs(i, j)] = True  # cross_local on (0, 0)
            mask[obs(i, j), theta[i]] = True
    return mask


@pytest.fixture
def three_level_spec():
    """``mu -> tau_g -> theta_gu -> obs_gu``: global, group, unit, observation."""
    return {
        "local": ["tau", "theta", "obs"],
        "cross": [("mu", "theta"), ("theta", "mu"), ("mu", "obs"), ("obs", "mu")],
        "cross_local": [
            ("tau", "theta", (0, 0)),
            ("tau", "obs", (0, 0)),
            ("theta", "obs", None),
        ],
    }


@pytest.fixture
def three_level_data():
    """``mu (3,1,1)``, ``tau (3,2,1)``, ``theta (3,2,3,1)``, ``obs (3,2,3,2)``.

    ``obs`` has two features per token (one more than the others: padding).
    """
    rng = np.random.default_rng(1)
    return {
        "mu": rng.normal(size=(3, 1, 1)).astype(np.float32),
        "tau": rng.normal(size=(3, 2, 1)).astype(np.float32),
        "theta": rng.normal(size=(3, 2, 3, 1)).astype(np.float32),
        "obs": rng.normal(size=(3, 2, 3, 2)).astype(np.float32),
    }


@pytest.fixture
def three_level_mask():
    """The 15x15 mask of the three-level structure, by hand.

    Tokens: ``mu`` 0, ``tau_g`` 1 + g, ``theta_gu`` 3 + 3 g + u,
    ``obs_gu`` 9 + 3 g + u (G = 2 groups, U = 3 units).
    """
    mask = np.zeros((15, 15), dtype=bool)
    mask[0, 0] = True
    for g in range(2):
        tau = 1 + g
        mask[0, tau] = mask[tau, 0] = True  # mu <-> tau: no rule
        for u in range(3):
            theta, obs = 3 + 3 * g + u, 9 + 3 * g + u
            mask[tau, theta] = mask[theta, tau] = True  # (tau, theta, (0, 0))
            mask[tau, obs] = mask[obs, tau] = True  # (tau, obs, (0, 0))
            mask[theta, obs] = mask[obs, theta] = True  # (theta, obs, None)
    return mask


@pytest.fixture
def reference_mask():
    """A naive mask: each token pair decided on its own from the spec.

    ``reference_mask(query, keys, spec)`` with ``query``/``keys`` lists of
    ``(name, event_shape)``. A pair (a in A, b in B) named by a cross_local
    rule is allowed iff the indices along its dims are equal (the flat indices
    for ``None``); otherwise it is forbidden if ``A == B`` is local or
    ``(A, B)`` is cross; otherwise allowed.
    """

    def tokens_of(layout):
        return [
            (name, index, flat)
            for name, event in layout
            for flat, index in enumerate(itertools.product(*map(range, event)))
        ]

    def build(query, keys, spec):
        pairs = {}
        for a, b, dims in spec.get("cross_local", ()):
            pairs[(a, b)] = ("ab", dims)
            pairs[(b, a)] = ("ba", dims)
        rows, cols = tokens_of(query), tokens_of(keys)
        mask = np.zeros((len(rows), len(cols)), dtype=bool)
        for r, (name_a, index_a, flat_a) in enumerate(rows):
            for c, (name_b, index_b, flat_b) in enumerate(cols):
                if (name_a, name_b) in pairs:
                    side, dims = pairs[(name_a, name_b)]
                    if dims is None:
                        allowed = flat_a == flat_b
                    else:
                        d_a, d_b = dims if side == "ab" else dims[::-1]
                        allowed = index_a[d_a] == index_b[d_b]
                elif name_a == name_b and name_a in spec.get("local", ()):
                    allowed = False
                else:
                    allowed = (name_a, name_b) not in set(
                        map(tuple, spec.get("cross", ()))
                    )
                mask[r, c] = allowed
        return mask

    return build


@pytest.fixture
def np_flatten():
    """Numpy flattening: ``np_flatten(data, sample_ndims, batch_ndims, width)``.

    Returns ``(flat, offsets)`` with features right-padded by ``pad``.
    """

    def flatten(data, sample_ndims=1, batch_ndims=None, width=None, pad=0.0):
        batch_ndims = batch_ndims or {}
        blocks, offsets, offset = [], {}, 0
        for key, leaf in data.items():
            leaf = np.asarray(leaf)
            nb = batch_ndims.get(key, 1)
            sample = leaf.shape[:sample_ndims]
            event = leaf.shape[sample_ndims : leaf.ndim - nb]
            n = math.prod(event)
            blocks.append(leaf.reshape(*sample, n, -1))
            offsets[key] = offset
            offset += n
        width = width or max(b.shape[-1] for b in blocks)
        padded = []
        for b in blocks:
            out = np.full((*b.shape[:-1], width), pad, dtype=b.dtype)
            out[..., : b.shape[-1]] = b
            padded.append(out)
        return np.concatenate(padded, axis=-2), offsets

    return flatten


def _gaussian_prior(rng_key):
    mu_rng_key, theta_rng_key = jax.random.split(rng_key)
    mu = jax.random.normal(mu_rng_key, (1, 1))
    theta = mu + jax.random.normal(theta_rng_key, (GROUPS, 1))
    return {"mu": mu, "theta": theta}


def _gaussian_simulator(rng_key, params):
    noise = jax.random.normal(rng_key, (GROUPS, PER_GROUP, 1))
    return {"obs": params["theta"][:, None, :] + noise}


def _gaussian_functional_inputs(params, observations):
    del params
    # the observation's position within its group, one feature per token
    position = jnp.broadcast_to(
        jnp.arange(PER_GROUP, dtype=jnp.float32)[None, :, None],
        observations["obs"].shape,
    )
    return {"obs": position}


@pytest.fixture
def gaussian_simulator():
    """Per-sample ``(prior_fn, simulator_fn, functional_input_fn)``.

    ``mu ~ N(0, 1)``, ``theta_i ~ N(mu, 1)``, ``obs_ij ~ N(theta_i, 1)``; the
    functional input of ``obs_ij`` is ``j``.
    """
    return _gaussian_prior, _gaussian_simulator, _gaussian_functional_inputs


@pytest.fixture
def bottom_up_swap_case():
    """Data for testing key swapping use case."""
    rng = np.random.default_rng(2)
    return {
        "theta_samples": {
            "theta": rng.normal(size=(N_SAMPLES, GROUPS, 1)).astype(np.float32)
        },
        "y_samples": {
            "obs": rng.normal(size=(N_SAMPLES, GROUPS, PER_GROUP, 1)).astype(np.float32)
        },
        "expected_target_keys": ["obs"],
        "expected_cond_keys": ["theta"],
    }
