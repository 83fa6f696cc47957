"""Persistent chains: states that carry over from one training iteration to the next."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Literal

import jax
import jax.numpy as jnp

from jax_smm.checks import as_key, check_fits_in_memory, check_int, format_bytes
from jax_smm.compile import Plan
from jax_smm.energy import extended_params
from jax_smm.features import State
from jax_smm.graph import FactorGraph
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


def random_states(plan: Plan, num_chains: int, rng_key: jax.Array) -> State:
    """Uniformly random chain states (uniform over states and over ``[low, high]``)."""
    cat_rng_key, cont_rng_key = jax.random.split(rng_key)
    cat_cards = jnp.asarray([plan.cards[v] for v in plan.cat_vars], jnp.int32)
    u = jax.random.uniform(cat_rng_key, (num_chains, len(plan.cat_vars)))
    cat = jnp.minimum(jnp.floor(u * cat_cards), cat_cards - 1).astype(jnp.int32)
    low = jnp.asarray(plan.cont_low, jnp.float32)
    high = jnp.asarray(plan.cont_high, jnp.float32)
    cont = jax.random.uniform(
        cont_rng_key, (num_chains, len(plan.cont_vars)), minval=low, maxval=high
    )
    return {"cat": cat, "cont": cont.astype(jnp.float32)}


def bytes_per_chain(plan: Plan) -> int:
    """Estimated working memory of one chain while it is sampled and counted.

    Counts the state and its bins, the row layout (current, previous, moves),
    one color block's conditional logits and gathered neighbor states
    (a one-hot of them at high degree), and the factor cells gathered when the
    moments are counted. An estimate for refusing sizes that cannot fit, not an
    exact figure.

    Returns
    -------
    int
        Bytes per chain.
    """
    k, size = plan.max_card, plan.color_size
    words = (
        4 * plan.num_vars
        + 3 * plan.num_rows
        + size * k * (3 + plan.pair_degree * k + plan.triple_degree)
        + 4 * plan.num_factors
    )
    return 4 * words


def check_chains_fit(plan: Plan, num_chains: int, name: str = "num_chains") -> None:
    """Refuse a number of chains whose estimated memory exceeds the machine's."""
    per_chain = bytes_per_chain(plan)
    check_fits_in_memory(
        f"{name} = {num_chains} (about {format_bytes(per_chain)} per chain)",
        num_chains * per_chain,
    )


@partial(jax.jit, static_argnames=("kernel", "n_sweeps"))
def _sample(
    plan: Plan,
    kernel: HybridGibbs,
    theta_ext: jax.Array,
    states: State,
    rng_key: jax.Array,
    n_sweeps: int,
) -> tuple[State, jax.Array, HybridInfo]:
    return kernel.step(plan, theta_ext, states, rng_key, n_sweeps)


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class PersistentBuffer:
    """A batch of persistent Markov chains and their PRNG key.

    The buffer is an immutable pytree: :meth:`sample_step` returns a new buffer,
    so it can be threaded through ``jit`` and ``lax.scan``. Use it as::

        buffer, moments, info = buffer.sample_step(graph)
        states = buffer.get_states()

    A buffer that :meth:`sample_step` has advanced is *stale*: its
    :meth:`get_states` raises ``RuntimeError`` instead of silently returning the
    states from before the step (the spec-style ``buffer.sample_step(...);
    buffer.get_states()``). Stepping a stale buffer again is allowed (it
    branches; without ``rng_key`` it repeats the same draws, as a pure function
    of the buffer should); ``buffer.states`` stays readable for code that
    knows it holds the old states.

    Attributes
    ----------
    states : dict
        ``{"cat": int32[chains, n_cat], "cont": float32[chains, n_cont]}``.
    rng_keys : jax.Array
        The key used (and advanced) when :meth:`sample_step` gets no ``rng_key``.
    """

    states: State
    rng_keys: jax.Array

    @classmethod
    def initialize(
        cls, graph: FactorGraph, num_chains: int, rng_key: jax.Array | int = 0
    ) -> PersistentBuffer:
        """Start ``num_chains`` chains from uniformly random states.

        Parameters
        ----------
        graph : FactorGraph
        num_chains : int
            Number of chains (at least 1).
        rng_key : jax.Array or int
            A PRNG key or an integer seed in ``[0, 2**32 - 1]``.

        Raises
        ------
        ValueError
            If ``num_chains`` is not a positive integer or the chains cannot fit
            in memory (the estimate is in the message), or ``rng_key`` is neither a
            key nor a seed.
        """
        num_chains = check_int("num_chains", num_chains, 1)
        check_chains_fit(graph.plan, num_chains)
        init_rng_key, keep_rng_key = jax.random.split(as_key("rng_key", rng_key))
        return cls(random_states(graph.plan, num_chains, init_rng_key), keep_rng_key)

    @property
    def num_chains(self) -> int:
        """Number of chains."""
        return int(self.states["cat"].shape[0])

    def get_states(self) -> State:
        """The current chain states.

        Raises
        ------
        RuntimeError
            If :meth:`sample_step` has advanced this buffer: the states it holds
            are those from before the step; use the buffer the step returned.
        """
        if getattr(self, "_advanced", False):
            raise RuntimeError(
                "get_states() on a PersistentBuffer that sample_step has already "
                "advanced: the buffer is immutable and sample_step returns the "
                "new one; write `buffer, moments, info = buffer.sample_step(...)`"
            )
        return self.states

    def sample_step(
        self,
        graph: FactorGraph,
        kernel: KernelLike | None = None,
        n_sweeps: int = 1,
        rng_key: jax.Array | None = None,
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
        rng_key : jax.Array, optional
            Key for this step; when omitted the buffer's own key is split.
        theta_groups : sequence of arrays, optional
            Group tables to sample with instead of the graph's own.

        Returns
        -------
        buffer : PersistentBuffer
            The advanced chains (this buffer becomes stale, see the class
            notes).
        moments : float32[P]
            Flat factor marginals averaged over every sweep and chain.
        info : HybridInfo
        """
        n_sweeps = check_int("n_sweeps", n_sweeps, 1)
        keep_rng_key = self.rng_keys
        if rng_key is None:
            keep_rng_key, rng_key = jax.random.split(self.rng_keys)
        else:
            rng_key = as_key("rng_key", rng_key)
        groups = graph.theta_groups if theta_groups is None else theta_groups
        states, counts, info = _sample(
            graph.plan,
            resolve_kernel(kernel),
            extended_params(groups),
            self.states,
            rng_key,
            n_sweeps,
        )
        moments = counts / (n_sweeps * self.num_chains)
        object.__setattr__(self, "_advanced", True)
        return PersistentBuffer(states, keep_rng_key), moments, info
