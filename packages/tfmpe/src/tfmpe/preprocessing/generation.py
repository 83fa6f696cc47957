"""Simulated training data as ``Tokens``: on demand or all at once.

Sample ``i`` of a dataset drawn with key ``key`` always uses
``jax.random.fold_in(key, i)``: the prior draws the parameters from one half of
it and the simulator the observations from the other. The batches of
:class:`TokenGenerator` (seed ``s``) are therefore exactly the rows of
:func:`generate_static_dataset` (key ``jax.random.key(s)``).

The callables work on one sample: ``prior_fn(key) -> dict`` of parameter
leaves, ``simulator_fn(key, params) -> dict`` of observation leaves, and the
optional ``functional_input_fn(params, observations) -> dict``; they are
vmapped over samples.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array

from tfmpe.preprocessing.flatten import static_int
from tfmpe.preprocessing.tokens import Tokens

PriorFn = Callable[[Array], dict[str, Array]]
SimulatorFn = Callable[[Array, dict[str, Array]], dict[str, Array]]
FunctionalFn = Callable[[dict[str, Array], dict[str, Array]], dict[str, Array]]


def _as_key(key: Array | int) -> Array:
    if isinstance(key, int):
        return jax.random.key(key)
    return key


def _simulate(
    key: Array,
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
        prior_key, sim_key = jax.random.split(jax.random.fold_in(key, i))
        params = prior_fn(prior_key)
        observations = simulator_fn(sim_key, params)
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


def generate_static_dataset(
    key: Array | int,
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
    key : jax.Array or int
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
    n_samples = static_int(n_samples, "n_samples")
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    data, functional = _simulate(
        _as_key(key), jnp.arange(n_samples), prior_fn, simulator_fn, functional_input_fn
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
        Samples per batch (the last batch may be smaller).
    seed : int
        Same seed, same batches, equal to the rows of
        ``generate_static_dataset(jax.random.key(seed), ...)``.
    **token_kwargs
        Passed to :meth:`Tokens.from_pytree`.
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
        **token_kwargs: Any,
    ) -> None:
        for name, value in (("n_samples", n_samples), ("batch_size", batch_size)):
            if int(value) < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        self.prior_fn, self.simulator_fn = prior_fn, simulator_fn
        self.functional_input_fn = functional_input_fn
        self.independence = independence
        self.n_samples, self.batch_size = int(n_samples), int(batch_size)
        self.key = jax.random.key(int(seed))
        self.token_kwargs = token_kwargs

    def __len__(self) -> int:
        """Number of batches."""
        return -(-self.n_samples // self.batch_size)

    def __iter__(self) -> Iterator[Tokens]:
        """Yield the batches in order."""
        for start in range(0, self.n_samples, self.batch_size):
            stop = min(start + self.batch_size, self.n_samples)
            data, functional = _simulate(
                self.key,
                jnp.arange(start, stop),
                self.prior_fn,
                self.simulator_fn,
                self.functional_input_fn,
            )
            yield Tokens.from_pytree(
                data, self.independence, functional, 1, **self.token_kwargs
            )
