"""Amortizers, encoders and decoders: small Flax Linen networks.

The builders register them with numpyro's ``flax_module`` (parameters in the
``{name}$params`` site), once outside the cell plate, and apply them purely
inside it, so SVI never retraces.

An :class:`Amortizer` standardizes its input with the mean and standard
deviation of the features it is initialized on (held fixed afterwards) and
starts with zero output weights, so its first outputs are zero for every cell
whatever the library sizes: the guide maps a zero output to its initial
parameters (see ``setup_guide`` for ``AmortizedGuide``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import flax.linen as nn
import jax
import jax.numpy as jnp
from jaxtyping import Array

from scribe.models.components.limits import positive_dims

MIN_INPUT_SCALE = 0.1  # floor of the standardizing scale of amortizer inputs


@dataclass(frozen=True)
class SufficientStatistic:
    """A per-cell summary of the counts fed to an amortizer.

    Parameters
    ----------
    name : str
    fn : callable
        ``counts[cells, genes] -> features[cells, d]``.
    """

    name: str
    fn: Callable[[Array], Array]

    def __call__(self, counts: Array) -> Array:
        """The features of the given cells."""
        return self.fn(counts)


TOTAL_COUNT = SufficientStatistic(
    "total_count", lambda counts: jnp.log1p(jnp.sum(counts, axis=-1, keepdims=True))
)


def _freeze_sequences(module: nn.Module, fields: Sequence[str]) -> None:
    """Store list attributes as tuples, so equal modules hash equal.

    Users pass ``hidden_dims=[64, 32]`` (as the spec's examples do); a Linen
    module with a list attribute is unhashable, and so is every frozen spec or
    guide family holding it. ``hidden_dims`` is checked to hold positive ints.
    """
    for field in fields:
        value = getattr(module, field)
        value = positive_dims(field, value) if field == "hidden_dims" else value
        object.__setattr__(module, field, tuple(value))


def _mlp(x: Array, hidden_dims: Sequence[int]) -> Array:
    for width in hidden_dims:
        x = nn.gelu(nn.Dense(width)(x))
    return x


class Amortizer(nn.Module):
    """Sufficient statistic -> one raw output per named guide parameter.

    The features are standardized by ``input_loc`` and ``input_scale``, set at
    initialization to their mean and standard deviation (floored at
    ``MIN_INPUT_SCALE``) over the cells it is initialized on and held fixed
    (their gradient is stopped, so Adam never moves them): initialize it on
    real features, not on a dummy ``input_shape``. The output layers start at
    zero weights and biases, so every raw output starts at zero, and read the
    last hidden layer divided by its width, so one Adam step of size ``lr``
    moves an output by about ``lr`` times the mean absolute activation (as it
    moves a mean-field parameter by ``lr``), not by ``lr`` times their sum,
    which threw the guide to degenerate Beta parameters within a few steps.

    Attributes
    ----------
    sufficient_statistic : SufficientStatistic
    hidden_dims : sequence of int
    output_params : sequence of str
        E.g. ``("alpha", "beta")`` for a Beta guide.
    """

    sufficient_statistic: SufficientStatistic
    hidden_dims: Sequence[int]
    output_params: Sequence[str]

    def __post_init__(self) -> None:
        _freeze_sequences(self, ("hidden_dims", "output_params"))
        super().__post_init__()

    @nn.compact
    def __call__(self, features: Array) -> dict[str, Array]:
        """Raw outputs ``{name: [cells]}`` from ``features[cells, d]``."""
        loc = self.param("input_loc", lambda _: jnp.mean(features, axis=0))
        scale = self.param(
            "input_scale",
            lambda _: jnp.maximum(jnp.std(features, axis=0), MIN_INPUT_SCALE),
        )
        x = (features - jax.lax.stop_gradient(loc)) / jax.lax.stop_gradient(scale)
        # divided by its width, the last layer moves each output by about the
        # step size per Adam step
        h = _mlp(x, self.hidden_dims) / max(self.hidden_dims[-1:] or [1])
        zeros = nn.initializers.zeros
        return {
            name: nn.Dense(1, kernel_init=zeros, name=f"out_{name}")(h)[..., 0]
            for name in self.output_params
        }


class Encoder(nn.Module):
    """``log1p(counts)`` -> ``{"loc", "log_scale"}`` of a ``latent_dim`` latent."""

    latent_dim: int
    hidden_dims: Sequence[int] = (128,)

    def __post_init__(self) -> None:
        _freeze_sequences(self, ("hidden_dims",))
        super().__post_init__()

    @nn.compact
    def __call__(self, counts: Array) -> dict[str, Array]:
        """Latent parameters of each cell."""
        h = _mlp(jnp.log1p(counts), self.hidden_dims)
        return {
            "loc": nn.Dense(self.latent_dim, name="loc")(h),
            "log_scale": nn.Dense(self.latent_dim, name="log_scale")(h),
        }


class Decoder(nn.Module):
    """``z`` -> positive per-gene values ``{name: [cells, n_genes]}`` (softplus)."""

    n_genes: int
    output_params: Sequence[str]
    hidden_dims: Sequence[int] = (128,)

    def __post_init__(self) -> None:
        _freeze_sequences(self, ("hidden_dims", "output_params"))
        super().__post_init__()

    @nn.compact
    def __call__(self, z: Array) -> dict[str, Array]:
        """Decoded values of each cell."""
        h = _mlp(z, self.hidden_dims)
        return {
            name: nn.softplus(nn.Dense(self.n_genes, name=f"out_{name}")(h)) + 1e-6
            for name in self.output_params
        }
