"""Persistent chains: states that carry over from one training iteration to the next."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from jax_smm.energy import extended_params
from jax_smm.features import State
from jax_smm.graph import FactorGraph, Plan
from jax_smm.mcmc.hybrid import HybridGibbs, HybridInfo
from jax_smm.mcmc.kernels import ChromaticGibbs, SequentialGibbs

KernelLike = (
    HybridGibbs | ChromaticGibbs | SequentialGibbs | Literal["chromatic", "sequential"]
)


def resolve_kernel(kernel: KernelLike | None) -> HybridGibbs:
    """Turn a kernel name or a discrete kernel into the hybrid kernel the buffer runs.

    ``None`` and ``"chromatic"`` give chromatic block Gibbs (the default);
    ``"sequential"`` gives the sequential reference sweep.
    """
    if kernel is None or kernel == "chromatic":
        return HybridGibbs(ChromaticGibbs())
    if kernel == "sequential":
        return HybridGibbs(SequentialGibbs())
    if isinstance(kernel, HybridGibbs):
        return kernel
    if isinstance(kernel, (ChromaticGibbs, SequentialGibbs)):
        return HybridGibbs(kernel)
    raise ValueError(
        "kernel must be 'chromatic', 'sequential', ChromaticGibbs(), "
        f"SequentialGibbs() or HybridGibbs(...), got {kernel!r}"
    )


def random_states(plan: Plan, num_chains: int, key: jax.Array) -> State:
    """Uniformly random chain states (uniform over states and over ``[low, high]``)."""
    cat_key, cont_key = jax.random.split(key)
    cat_cards = jnp.asarray([plan.cards[v] for v in plan.cat_vars], jnp.int32)
    u = jax.random.uniform(cat_key, (num_chains, len(plan.cat_vars)))
    cat = jnp.minimum(jnp.floor(u * cat_cards), cat_cards - 1).astype(jnp.int32)
    low = jnp.asarray(plan.cont_low, jnp.float32)
    high = jnp.asarray(plan.cont_high, jnp.float32)
    cont = jax.random.uniform(
        cont_key, (num_chains, len(plan.cont_vars)), minval=low, maxval=high
    )
    return {"cat": cat, "cont": cont.astype(jnp.float32)}


@partial(jax.jit, static_argnames=("kernel", "n_sweeps"))
def _sample(
    plan: Plan,
    kernel: HybridGibbs,
    theta_ext: jax.Array,
    states: State,
    key: jax.Array,
    n_sweeps: int,
) -> tuple[State, jax.Array, HybridInfo]:
    return kernel.step(plan, theta_ext, states, key, n_sweeps)


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class PersistentBuffer:
    """A batch of persistent Markov chains and their random key.

    The buffer is an immutable pytree: :meth:`sample_step` returns a new buffer,
    so it can be threaded through ``jit`` and ``lax.scan``.

    Attributes
    ----------
    states : dict
        ``{"cat": int32[chains, n_cat], "cont": float32[chains, n_cont]}``.
    rng_keys : jax.Array
        The key used (and advanced) when :meth:`sample_step` gets no ``rng``.
    """

    states: State
    rng_keys: jax.Array

    @classmethod
    def initialize(
        cls, graph: FactorGraph, num_chains: int, rng: jax.Array | int = 0
    ) -> PersistentBuffer:
        """Start ``num_chains`` chains from uniformly random states.

        Parameters
        ----------
        graph : FactorGraph
        num_chains : int
            Number of chains (at least 1).
        rng : jax.Array or int
            A PRNG key or an integer seed.
        """
        if int(num_chains) < 1:
            raise ValueError(f"num_chains must be >= 1, got {num_chains!r}")
        key = jax.random.key(int(rng)) if isinstance(rng, (int, np.integer)) else rng
        init_key, keep_key = jax.random.split(key)
        return cls(random_states(graph.plan, int(num_chains), init_key), keep_key)

    @property
    def num_chains(self) -> int:
        """Number of chains."""
        return int(self.states["cat"].shape[0])

    def get_states(self) -> State:
        """The current chain states."""
        return self.states

    def sample_step(
        self,
        graph: FactorGraph,
        kernel: KernelLike | None = None,
        n_sweeps: int = 1,
        rng: jax.Array | None = None,
        theta_groups: Sequence[jax.Array] | None = None,
    ) -> tuple[PersistentBuffer, jax.Array, HybridInfo]:
        """Advance every chain by ``n_sweeps`` sweeps.

        Parameters
        ----------
        graph : FactorGraph
        kernel : str or kernel, optional
            ``"chromatic"`` (default) or ``"sequential"``, or a kernel object.
        n_sweeps : int
            Number of sweeps (at least 1).
        rng : jax.Array, optional
            Key for this step; when omitted the buffer's own key is split.
        theta_groups : sequence of arrays, optional
            Group tables to sample with instead of the graph's own.

        Returns
        -------
        buffer : PersistentBuffer
            The advanced chains.
        moments : float32[P]
            Flat factor marginals averaged over every sweep and chain.
        info : HybridInfo
        """
        if int(n_sweeps) < 1:
            raise ValueError(f"n_sweeps must be >= 1, got {n_sweeps!r}")
        keep = self.rng_keys
        if rng is None:
            keep, rng = jax.random.split(self.rng_keys)
        groups = graph.theta_groups if theta_groups is None else theta_groups
        states, counts, info = _sample(
            graph.plan,
            resolve_kernel(kernel),
            extended_params(groups),
            self.states,
            rng,
            int(n_sweeps),
        )
        moments = counts / (int(n_sweeps) * self.num_chains)
        return PersistentBuffer(states, keep), moments, info
