"""Distributions numpyro lacks: ``BetaPrime``."""

from __future__ import annotations

from typing import ClassVar

import numpyro.distributions as dist
from jaxtyping import ArrayLike
from numpyro.distributions import constraints
from numpyro.distributions.transforms import ExpTransform, SigmoidTransform

from scribe.models.components.special import nb_log_prob


class BetaPrime(dist.TransformedDistribution):
    """Beta prime (Beta of the second kind), density ``x^(a-1) (1+x)^(-a-b) / B(a, b)``.

    If ``X ~ Beta(a, b)`` then ``X / (1 - X) ~ BetaPrime(a, b)``; so for
    ``p ~ Beta(a, b)``, the odds ``(1 - p) / p ~ BetaPrime(b, a)``. Built as
    ``Beta(a, b)`` pushed through ``exp(logit(x))``.

    Parameters
    ----------
    concentration1, concentration0 : array_like
        ``a`` and ``b``, both positive.
    """

    arg_constraints: ClassVar[dict[str, constraints.Constraint]] = {
        "concentration1": constraints.positive,
        "concentration0": constraints.positive,
    }
    support = constraints.positive

    def __init__(
        self,
        concentration1: ArrayLike,
        concentration0: ArrayLike,
        *,
        validate_args: bool | None = None,
    ) -> None:
        self.concentration1 = concentration1
        self.concentration0 = concentration0
        base = dist.Beta(concentration1, concentration0)
        super().__init__(
            base,
            [SigmoidTransform().inv, ExpTransform()],
            validate_args=validate_args,
        )

    def tree_flatten(self):
        """Pytree children: the two concentrations."""
        return (self.concentration1, self.concentration0), None

    @classmethod
    def tree_unflatten(cls, aux_data, params):
        """Rebuild from the two concentrations."""
        return cls(*params)


class NegativeBinomial(dist.NegativeBinomialProbs):
    """numpyro's ``NegativeBinomialProbs(r, p)`` with a cheaper, accurate log-prob.

    Sampling is numpyro's (Gamma-Poisson); :meth:`log_prob` is
    :func:`scribe.models.components.special.nb_log_prob` (one shared Lanczos
    evaluation for value and gradient, float32-accurate at large counts).
    """

    def log_prob(self, value: ArrayLike):
        """Log-probability of ``value`` counts."""
        if self._validate_args:
            self._validate_sample(value)
        return nb_log_prob(value, self.total_count, self.probs)
