"""Simulated training data as ``Tokens``: on demand or all at once.

Sample ``i`` of a dataset drawn with the PRNG key ``rng_key`` always uses
``jax.random.fold_in(rng_key, i)``: the prior draws the parameters from one half
of it and the simulator the observations from the other. The first pass over a
:class:`TokenGenerator` (seed ``s``) therefore yields exactly the rows of
:func:`generate_static_dataset` (key ``jax.random.key(s)``); pass ``e`` draws
fresh simulations from ``jax.random.fold_in(jax.random.key(s), e)``, so every
epoch of training sees new data and a rerun with the same seed sees the same.

The callables work on one sample: ``prior_fn(rng_key) -> dict`` of parameter
leaves, ``simulator_fn(rng_key, params) -> dict`` of observation leaves, and the
optional ``functional_input_fn(params, observations) -> dict``; they are
vmapped over samples.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array

from tfmpe.preprocessing.flatten import check_token_bytes, positive_count
from tfmpe.preprocessing.tokens import Tokens
from tfmpe.rng import as_rng_key

PriorFn = Callable[[Array], dict[str, Array]]
SimulatorFn = Callable[[Array, dict[str, Array]], dict[str, Array]]
FunctionalFn = Callable[[dict[str, Array], dict[str, Array]], dict[str, Array]]


def _simulate(
    rng_key: Array,
    indices: Array,
    prior_fn: PriorFn,
    simulator_fn: SimulatorFn,
    functional_input_fn: FunctionalFn | None,
) -> tuple[dict[str, Array], dict[str, Array] | None]:
    """Parameters + observations (and functional inputs) of the given samples.

    The keys keep the order ``prior_fn`` then ``simulator_fn`` return them in
    (``vmap`` alone would sort them).
    """
    order: list[str] = []

    def one(i):
        prior_rng_key, sim_rng_key = jax.random.split(jax.random.fold_in(rng_key, i))
        params = prior_fn(prior_rng_key)
        observations = simulator_fn(sim_rng_key, params)
        overlap = set(params) & set(observations)
        if overlap:
            raise ValueError(
                f"prior_fn and simulator_fn return the same keys {sorted(overlap)}"
            )
        functional = (
            None
            if functional_input_fn is None
            else functional_input_fn(params, observations)
        )
        order[:] = [*params, *observations]
        return {**params, **observations}, functional

    data, functional = jax.vmap(one)(indices)
    return {key: data[key] for key in order}, functional


def check_simulation_size(
    prior_fn: PriorFn, simulator_fn: SimulatorFn, n_samples: int, name: str
) -> None:
    """Refuse ``n_samples`` whose simulations would exceed the token size limit.

    One sample's output shapes come from ``jax.eval_shape`` (nothing is run).

    Raises
    ------
    ValueError
        Naming ``name``, its value and the memory it would take.
    """

    def one(rng_key):
        prior_rng_key, sim_rng_key = jax.random.split(rng_key)
        params = prior_fn(prior_rng_key)
        return params, simulator_fn(sim_rng_key, params)

    shapes = jax.eval_shape(one, jax.random.key(0))
    elements = sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(shapes))
    check_token_bytes(4 * elements * n_samples, name, n_samples)


def generate_static_dataset(
    rng_key: Array | int,
    prior_fn: PriorFn,
    simulator_fn: SimulatorFn,
    functional_input_fn: FunctionalFn | None,
    independence: Mapping[str, Any] | None,
    n_samples: int,
    **token_kwargs: Any,
) -> Tokens:
    """Simulate ``n_samples`` samples into one ``Tokens`` (static shapes).

    Parameters
    ----------
    rng_key : jax.Array or int
        PRNG key (an int is a seed).
    prior_fn, simulator_fn, functional_input_fn : callable
        Per-sample functions (see the module doc).
    independence : dict
    n_samples : int
    **token_kwargs
        Passed to :meth:`Tokens.from_pytree` (``batch_ndims``, ``label_map``,
        ``event_shapes``, ``max_batch_size``).

    Returns
    -------
    Tokens
        With one leading sample axis of length ``n_samples``.
    """
    n_samples = positive_count(n_samples, "n_samples")
    check_simulation_size(prior_fn, simulator_fn, n_samples, "n_samples")
    data, functional = _simulate(
        as_rng_key(rng_key),
        jnp.arange(n_samples),
        prior_fn,
        simulator_fn,
        functional_input_fn,
    )
    return Tokens.from_pytree(
        data, independence, functional, sample_ndims=1, **token_kwargs
    )


class TokenGenerator:
    """Iterate over simulated batches of ``Tokens`` without storing the dataset.

    Parameters
    ----------
    prior_fn, simulator_fn, functional_input_fn : callable
        Per-sample functions (see the module doc).
    independence : dict
    n_samples : int
        Samples per pass.
    batch_size : int
        Samples per batch.
    seed : int
        Same seed, same passes; the first pass equals the rows of
        ``generate_static_dataset(jax.random.key(seed), ...)``.
    drop_last : bool
        Skip a last batch smaller than ``batch_size`` (so a jitted step sees
        one shape and never retraces).
    **token_kwargs
        Passed to :meth:`Tokens.from_pytree`.

    Attributes
    ----------
    epoch : int
        Passes started so far; the next pass draws with this index.
    """

    def __init__(
        self,
        prior_fn: PriorFn,
        simulator_fn: SimulatorFn,
        functional_input_fn: FunctionalFn | None,
        independence: Mapping[str, Any] | None,
        n_samples: int,
        batch_size: int,
        seed: int,
        drop_last: bool = False,
        **token_kwargs: Any,
    ) -> None:
        n_samples = positive_count(n_samples, "n_samples")
        batch_size = positive_count(batch_size, "batch_size")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {seed!r}")
        if drop_last and batch_size > n_samples:
            raise ValueError(
                f"drop_last=True with batch_size ({batch_size}) > n_samples "
                f"({n_samples}) yields no batch"
            )
        check_simulation_size(
            prior_fn, simulator_fn, min(batch_size, n_samples), "batch_size"
        )
        self.prior_fn, self.simulator_fn = prior_fn, simulator_fn
        self.functional_input_fn = functional_input_fn
        self.independence = independence
        self.n_samples, self.batch_size = n_samples, batch_size
        self.drop_last = bool(drop_last)
        self.rng_key = jax.random.key(seed)
        self.epoch = 0
        self.token_kwargs = token_kwargs

    def __len__(self) -> int:
        """Number of batches per pass."""
        if self.drop_last:
            return self.n_samples // self.batch_size
        return -(-self.n_samples // self.batch_size)

    def __iter__(self) -> Iterator[Tokens]:
        """Yield one pass of batches, drawn afresh for every pass."""
        rng_key = self.rng_key
        if self.epoch > 0:
            rng_key = jax.random.fold_in(self.rng_key, self.epoch)
        self.epoch += 1
        for index in range(len(self)):
            start = index * self.batch_size
            stop = min(start + self.batch_size, self.n_samples)
            data, functional = _simulate(
                rng_key,
                jnp.arange(start, stop),
                self.prior_fn,
                self.simulator_fn,
                self.functional_input_fn,
            )
            yield Tokens.from_pytree(
                data, self.independence, functional, 1, **self.token_kwargs
            )
