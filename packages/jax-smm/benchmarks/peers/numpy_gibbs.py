"""The reference floor: a vectorized NumPy checkerboard Gibbs sampler."""

from __future__ import annotations

import time

import numpy as np
from potts_grid import NUM_NEIGHBORS, PottsModel, oriented_incidences

NUMPY_WARMUP_SWEEPS = 5


class NumpySampler:
    """Vectorized NumPy checkerboard Gibbs sampler (two colors).

    Each color's states are a ``(sites of the color, chains)`` array, chains on
    the last, contiguous axis; neighbors are gathered from the other color's
    array. Every update draws exactly one uniform.

    Parameters
    ----------
    model : PottsModel
    init : int[chains, n]
        Initial states.
    n_sweeps : int
        Sweeps per call.
    n_calls : int
        Unused (the common signature of the samplers).
    seed : int
        Seed of the NumPy generator used for the updates.
    """

    name = "numpy"
    compile_s = None

    def __init__(
        self,
        model: PottsModel,
        init: np.ndarray,
        n_sweeps: int,
        n_calls: int,
        seed: int,
    ) -> None:
        del n_calls  # no PRNG keys to prepare: one generator serves every call
        start = time.perf_counter()
        self.k = model.num_states
        self.n_sweeps = n_sweeps
        self.num_sites = model.num_sites
        self.rng = np.random.default_rng(seed)
        self.sites = model.color_sites()
        chains = init.shape[0]
        position = np.empty(model.num_sites, np.intp)
        for sites in self.sites:
            position[sites] = np.arange(len(sites))
        other, tables = oriented_incidences(model)
        # nb[c][j, d]: position, within the other color, of neighbor d of site j.
        self.nb = [position[other[sites]] for sites in self.sites]
        size = len(self.sites[0])
        self._uniform = np.empty((size, chains), np.float32)
        if self.k == 2:
            # logit(x_i = 1) - logit(x_i = 0) = base_i + sum_d coef_id * x_other,
            # since T[1, y] - T[0, y] = a + b * y for y in {0, 1}.
            a = tables[:, :, 1, 0] - tables[:, :, 0, 0]
            b = tables[:, :, 1, 1] - tables[:, :, 0, 1] - a
            base = model.unary[:, 1] - model.unary[:, 0] + a.sum(axis=1)
            self.base = [base[sites][:, None] for sites in self.sites]
            self.coef = [b[sites][:, :, None] for sites in self.sites]
            self.state = [init[:, sites].T.astype(np.float32) for sites in self.sites]
            self._field = np.empty((size, chains), np.float32)
            self._gathered = np.empty((size, chains), np.float32)
        else:
            # rows[c][(j * 4 + d) * K + y] = tables[site j, d, :, y]: the K-vector
            # over own states selected by the neighbor's state y.
            self.rows = [
                np.ascontiguousarray(
                    tables[sites].transpose(0, 1, 3, 2).reshape(-1, self.k)
                )
                for sites in self.sites
            ]
            self.row_offset = (
                np.arange(size * NUM_NEIGHBORS, dtype=np.intp).reshape(size, -1)
                * self.k
            )
            self.unary = [model.unary[sites][:, None, :] for sites in self.sites]
            self.state = [
                np.ascontiguousarray(init[:, sites].T, np.intp) for sites in self.sites
            ]
        self.setup_s = time.perf_counter() - start

    def _update_binary(self, color: int) -> None:
        own, other = self.state[color], self.state[1 - color]
        field, gathered = self._field, self._gathered
        nb, coef = self.nb[color], self.coef[color]
        np.copyto(field, np.broadcast_to(self.base[color], field.shape))
        for d in range(NUM_NEIGHBORS):
            np.take(other, nb[:, d], axis=0, out=gathered)
            gathered *= coef[:, d]
            field += gathered
        # x = 1 with probability sigmoid(field) <=> u * (1 + exp(-field)) < 1.
        np.negative(field, out=field)
        with np.errstate(over="ignore"):
            np.exp(field, out=field)
        field += 1.0
        self.rng.random(dtype=np.float32, out=self._uniform)
        self._uniform *= field
        np.less(self._uniform, 1.0, out=own)

    def _update_categorical(self, color: int) -> None:
        other = self.state[1 - color]
        nb, rows, offset = self.nb[color], self.rows[color], self.row_offset
        logits = None
        for d in range(NUM_NEIGHBORS):
            index = other.take(nb[:, d], axis=0)
            index += offset[:, d, None]
            gathered = rows.take(index, axis=0)  # (sites, chains, K)
            if logits is None:
                logits = gathered
            else:
                logits += gathered
        logits += self.unary[color]
        # (sites, K, chains): the reductions over K become chain-wide vector ops.
        weights = np.ascontiguousarray(logits.transpose(0, 2, 1))
        weights -= weights.max(axis=1, keepdims=True)
        np.exp(weights, out=weights)
        for k in range(1, self.k):  # in-place cumulative sum over the states
            np.add(weights[:, k], weights[:, k - 1], out=weights[:, k])
        threshold = self.rng.random(dtype=np.float32, out=self._uniform)
        threshold *= weights[:, -1]
        new = self.state[color]
        new.fill(0)
        for k in range(self.k - 1):  # new state = #{k : cdf_k < u * total}
            new += weights[:, k] < threshold

    def sweep(self, n_sweeps: int) -> None:
        """Run ``n_sweeps`` sweeps (color 0 then color 1)."""
        update = self._update_binary if self.k == 2 else self._update_categorical
        for _ in range(n_sweeps):
            update(0)
            update(1)

    def warm_up(self) -> None:
        """Run a few untimed sweeps (there is nothing to compile)."""
        self.sweep(min(self.n_sweeps, NUMPY_WARMUP_SWEEPS))

    def run(self, call: int) -> None:
        """Run one timed call of ``n_sweeps`` sweeps."""
        del call
        self.sweep(self.n_sweeps)

    def states(self) -> np.ndarray:
        """Current states, ``int64[chains, n]``."""
        out = np.empty((self.state[0].shape[1], self.num_sites), np.int64)
        for sites, state in zip(self.sites, self.state, strict=True):
            out[:, sites] = state.T
        return out
