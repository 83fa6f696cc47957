"""NumPyro peers: its NB log-probability and the hand-written canonical NB model."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist


def numpyro_nb_log_prob(counts: jax.Array, r: jax.Array, p: jax.Array) -> jax.Array:
    """Elementwise ``dist.NegativeBinomialProbs(r, p).log_prob(counts)``."""
    return dist.NegativeBinomialProbs(r, p).log_prob(counts)


def make_plain_nb_model(
    negative_binomial: type[dist.NegativeBinomialProbs],
) -> Callable[..., None]:
    """The canonical NB model written directly in NumPyro (the peer).

    Parameters
    ----------
    negative_binomial : type
        The counts' distribution class, called as ``negative_binomial(r, p)``:
        numpyro's ``NegativeBinomialProbs`` or scribe's ``NegativeBinomial``.

    Returns
    -------
    callable
        ``model(n_cells, n_genes, counts=None, batch_size=None)``: ``p ~ Beta(1,
        1)``, ``r_g ~ LogNormal(0, 1)``, counts of a cell ``~ NB(r, p)`` over
        genes, minibatched by the cell plate. Its guide is ``AutoNormal(model)``.
    """

    def model(
        n_cells: int,
        n_genes: int,
        counts: jax.Array | None = None,
        batch_size: int | None = None,
    ) -> None:
        p = numpyro.sample("p", dist.Beta(1.0, 1.0))
        with numpyro.plate("genes", n_genes):
            r = numpyro.sample("r", dist.LogNormal(0.0, 1.0))
        with numpyro.plate("cells", n_cells, subsample_size=batch_size) as idx:
            observed = None if counts is None else jnp.take(counts, idx, axis=0)
            numpyro.sample("counts", negative_binomial(r, p).to_event(1), obs=observed)

    return model
