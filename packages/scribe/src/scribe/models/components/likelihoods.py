"""Negative-binomial count likelihoods and their log-likelihood summaries.

Conventions (numpyro's ``NegativeBinomialProbs(r, p)``): a count ``k`` has

    log P(k) = lgamma(k + r) - lgamma(r) - lgamma(k + 1) + r log(1 - p) + k log p,

mean ``r p / (1 - p)``. Variants:

* zero-inflated (``gate``): ``P(0) = gate + (1 - gate) NB(0)``, otherwise
  ``(1 - gate) NB(k)``;
* variable capture probability ``nu`` per cell: ``p_hat = p nu / (1 - p (1 - nu))``;
* K-component mixtures: parameters carry a leading component axis and
  ``mixing_weights`` sum to one.

Arrays are ``counts[cells, genes]``; ``p`` is a scalar or per component,
``r`` and ``gate`` per gene (and component), ``p_capture`` per cell.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from jax.scipy.special import logsumexp
from jaxtyping import Array

from scribe.models.components.distributions import NegativeBinomial
from scribe.models.components.special import nb_log_prob

ReturnBy = Literal["cell", "gene"]


def zinb_log_prob(counts: Array, r: Array, p: Array, gate: Array) -> Array:
    """Elementwise log-probability of the zero-inflated negative binomial."""
    nb = nb_log_prob(counts, r, p)
    zero = jnp.logaddexp(jnp.log(gate), jnp.log1p(-gate) + nb)
    return jnp.where(counts == 0, zero, jnp.log1p(-gate) + nb)


def capture_adjusted_p(p: Array, p_capture: Array) -> Array:
    """``p nu / (1 - p (1 - nu))``: the success probability seen through capture."""
    return p * p_capture / (1.0 - p * (1.0 - p_capture))


def _cells_after_components(values: Array) -> Array:
    """``[K, genes]`` -> ``[K, 1, genes]``; a shared ``[genes]`` stays as it is."""
    return values[:, None, :] if values.ndim == 2 else values


def element_log_prob(counts: Array, params: Mapping[str, Array]) -> Array:
    """Log-probability of every count under the parameters present in ``params``.

    Parameters
    ----------
    counts : Array
        ``[cells, genes]``.
    params : mapping
        ``p``, ``r`` and optionally ``gate``, ``p_capture`` (without
        ``mixing_weights``, a single component: ``p`` scalar, ``r``/``gate``
        ``[genes]``; with it, a leading component axis on the parameters that
        differ between components, ``p`` ``[K]``, ``r``/``gate`` ``[K,
        genes]``, while shared ones keep their single-component shape).

    Returns
    -------
    Array
        ``[cells, genes]``, or ``[components, cells, genes]`` for a mixture.
    """
    mixture = "mixing_weights" in params
    p = jnp.asarray(params["p"])
    r = jnp.asarray(params["r"])
    gate = params.get("gate")
    if mixture:  # components first: p [K] -> [K, 1, 1], r/gate [K, G] -> [K, 1, G]
        p = p.reshape(-1, 1, 1)
        r = _cells_after_components(r)
        gate = None if gate is None else _cells_after_components(jnp.asarray(gate))
    if "p_capture" in params:
        p = capture_adjusted_p(p, jnp.asarray(params["p_capture"])[:, None])
    if gate is None:
        return nb_log_prob(counts, r, p)
    return zinb_log_prob(counts, r, p, jnp.asarray(gate))


def log_likelihood(
    counts: Array,
    params: Mapping[str, Array],
    return_by: ReturnBy = "cell",
    split_components: bool = False,
    weights: Array | None = None,
) -> Array:
    """Log-likelihood summed per cell (over genes) or per gene (over cells).

    Parameters
    ----------
    counts : Array
        ``[cells, genes]``.
    params : mapping
        See :func:`element_log_prob`.
    return_by : {"cell", "gene"}
    split_components : bool
        Mixtures only: return the per-component terms ``log w_k + sum log p_k``
        (``[n, K]``) instead of their logsumexp.
    weights : Array, optional
        Per-gene weights added to every element's log-probability before the
        sum over genes (``return_by="cell"`` only).

    Returns
    -------
    Array
        ``[cells]`` or ``[genes]`` (``[n, K]`` when split).

    Notes
    -----
    A mixture assigns a whole cell (``"cell"``) or a whole gene column
    (``"gene"``) to one component: ``logsumexp_k(log w_k + sum log p_k)``.
    """
    if return_by not in ("cell", "gene"):
        raise ValueError(f"return_by must be 'cell' or 'gene', got {return_by!r}")
    if weights is not None and return_by != "cell":
        raise ValueError("weights apply to per-cell sums only (return_by='cell')")
    element = element_log_prob(counts, params)
    if weights is not None:
        element = element + jnp.asarray(weights)
    axis = -1 if return_by == "cell" else -2
    summed = jnp.sum(element, axis=axis)
    if "mixing_weights" not in params:
        if split_components:
            raise ValueError("split_components needs a mixture (mixing_weights)")
        return summed
    terms = (jnp.log(jnp.asarray(params["mixing_weights"]))[:, None] + summed).T
    return terms if split_components else logsumexp(terms, axis=-1)


class NegativeBinomialLikelihood:
    """Counts of a cell ~ independent ``NB(r_g, p)`` over genes.

    Inside the model's cell plate, :meth:`sample` draws (or observes) the
    ``counts`` site, one ``[genes]`` event per cell. With ``mixing_weights``
    among the values it is a K-component mixture (``p`` ``[K]`` or scalar,
    ``r`` ``[K, genes]``): a whole cell comes from one component. Per-cell
    parameters (``[cells, genes]``, e.g. decoded by a VAE) broadcast too.
    """

    zero_inflated: ClassVar[bool] = False
    capture: ClassVar[bool] = False

    @property
    def required(self) -> tuple[str, ...]:
        """Names of the values the likelihood reads."""
        return (
            ("p", "r")
            + (("gate",) if self.zero_inflated else ())
            + (("p_capture",) if self.capture else ())
        )

    def counts_dist(self, values: Mapping[str, Any]) -> dist.Distribution:
        """The distribution of one cell's counts (event shape ``[genes]``)."""
        missing = [k for k in self.required if k not in values]
        if missing:
            raise ValueError(
                f"{type(self).__name__} needs values {list(self.required)}; "
                f"missing {missing}"
            )
        mixture = "mixing_weights" in values
        p, r = jnp.asarray(values["p"]), jnp.asarray(values["r"])
        gate = values.get("gate") if self.zero_inflated else None
        if mixture and p.ndim == 1:
            p = p[:, None]  # [K] -> [K, 1] against r [K, genes]
        if self.capture:
            nu = jnp.asarray(values["p_capture"])
            nu = nu[:, None, None] if mixture else nu[:, None]
            p = capture_adjusted_p(p, nu)
        base: dist.Distribution = NegativeBinomial(r, p)
        if gate is not None:
            base = dist.ZeroInflatedDistribution(base, gate=gate)
        base = base.to_event(1)
        if not mixture:
            return base
        return dist.MixtureSameFamily(
            dist.Categorical(probs=values["mixing_weights"]), base
        )

    def sample(self, values: Mapping[str, Any], counts: Any | None) -> Any:
        """The ``counts`` site (observed when ``counts`` is given)."""
        return numpyro.sample("counts", self.counts_dist(values), obs=counts)


class ZeroInflatedNBLikelihood(NegativeBinomialLikelihood):
    """NB with a per-gene ``gate``: extra zeros."""

    zero_inflated: ClassVar[bool] = True


class NBWithVCPLikelihood(NegativeBinomialLikelihood):
    """NB seen through a per-cell capture probability ``p_capture``."""

    capture: ClassVar[bool] = True


class ZINBWithVCPLikelihood(NegativeBinomialLikelihood):
    """Zero-inflated NB seen through a per-cell capture probability."""

    zero_inflated: ClassVar[bool] = True
    capture: ClassVar[bool] = True
