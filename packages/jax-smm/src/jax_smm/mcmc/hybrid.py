"""The kernel for mixed categorical / bounded-continuous states.

A continuous variable is updated by Gibbs over its bins (its factor tables see
only the bin), then given a value drawn uniformly inside the chosen bin. That is
exact for the binned model, whose density is constant inside each bin. The bin
moves are delegated to a discrete kernel (chromatic by default); this wrapper
converts the state pytree to bins and back and reports how often the continuous
variables changed bin. Gibbs draws are always accepted, so the acceptance rate
is 1 by construction and the *move rate* is the informative figure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jax_smm.compile import Plan
from jax_smm.features import State, bins_to_state, state_to_bins
from jax_smm.mcmc.kernels import ChromaticGibbs, SequentialGibbs


class HybridInfo(NamedTuple):
    """Diagnostics of a batch of hybrid sweeps.

    Attributes
    ----------
    move_rate : float32[n]
        Per variable, the fraction of updates that changed its state or bin.
    continuous_move_rate : float32 scalar
        Mean move rate of the continuous variables (NaN-free: 0 if none).
    acceptance_rate : float32 scalar
        Always 1 for Gibbs moves.
    """

    move_rate: jax.Array
    continuous_move_rate: jax.Array
    acceptance_rate: jax.Array


@dataclass(frozen=True)
class HybridGibbs:
    """Gibbs over bins plus an exact uniform draw inside the chosen bin.

    Parameters
    ----------
    inner : ChromaticGibbs or SequentialGibbs
        The discrete kernel that moves states and bins.
    """

    inner: ChromaticGibbs | SequentialGibbs = field(default_factory=ChromaticGibbs)

    def step(
        self,
        plan: Plan,
        theta_ext: jax.Array,
        states: State,
        rng_key: jax.Array,
        n_sweeps: int,
    ) -> tuple[State, jax.Array, HybridInfo]:
        """Run ``n_sweeps`` sweeps on a batch of chain states.

        Parameters
        ----------
        plan : Plan
        theta_ext : float32[P + 1]
            Flat effective parameters with a trailing zero.
        states : dict
            Chain states, leading axis = chains.
        rng_key : jax.Array
        n_sweeps : int
            Sweeps to run (static).

        Returns
        -------
        states : dict
            The new chain states.
        counts : float32[P]
            Factor-cell counts summed over every sweep and chain.
        info : HybridInfo
        """
        bin_rng_key, value_rng_key = jax.random.split(rng_key)
        bins = state_to_bins(plan, states)
        bins, counts, info = self.inner.sample_bins(
            plan, theta_ext, bins, bin_rng_key, n_sweeps
        )
        new_states = bins_to_state(plan, bins, value_rng_key, previous=states)
        cont = np.asarray(plan.cont_vars, np.int64)
        cont_rate = jnp.mean(info.move_rate[cont]) if cont.size else jnp.float32(0)
        return (
            new_states,
            counts,
            HybridInfo(info.move_rate, cont_rate, jnp.float32(1.0)),
        )
