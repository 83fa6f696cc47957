"""Calibration: fitted guides against exact posteriors.

The conjugate case: ``p ~ Beta(a, b)`` and counts ``~ NB(r, p)`` with ``r``
known. In numpyro's convention (``NegativeBinomialProbs(r, p)``, pmf
``∝ p^k (1 - p)^r``, see ``models/components/likelihoods.py``) the posterior is
``Beta(a + sum k, b + n_cells n_genes r)``. With 800 cells x 20 genes it has
concentration ~45,600, close to the ~47,000 at which a mean-field guide
started at the prior's width was measured to stay ~4x too wide after 3,000
steps. The fits run through scribe's own ``run_svi`` at its default
settings (Adam at 0.1, cosine decay, one particle).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.infer import MCMC, NUTS, Predictive

from scribe.config import FitConfig
from scribe.data import as_count_data
from scribe.inference import run_svi
from scribe.models.builders import BetaSpec, GuideBuilder, ModelBuilder
from scribe.models.components import JointGuide, NegativeBinomialLikelihood
from scribe.models.presets import standard_model

N_CELLS, N_GENES, R, P, PRIOR = 800, 20, 2.0, 0.3, (2.0, 3.0)


@pytest.fixture(scope="module")
def conjugate():
    """Counts, the model, the spec of p and the exact posterior's mean and sd."""
    rng = np.random.default_rng(0)
    counts = rng.negative_binomial(R, 1 - P, (N_CELLS, N_GENES))  # numpy's p = 1 - p
    a = PRIOR[0] + counts.sum()
    b = PRIOR[1] + N_CELLS * N_GENES * R
    mean = a / (a + b)
    sd = np.sqrt(mean * (1 - mean) / (a + b + 1))
    spec = BetaSpec("p", (), PRIOR)
    model = (
        ModelBuilder()
        .add_param(spec)
        .add_derived("r", lambda: jnp.full(N_GENES, R), [])
        .with_likelihood(NegativeBinomialLikelihood())
        .build()
    )
    assert 40_000 < a + b < 50_000
    return counts, model, spec, mean, sd


def guide_draws(guide, params, counts, site, n=20_000):
    """Draws of ``site`` from the fitted guide."""
    draws = Predictive(guide, params=params, num_samples=n)(
        jax.random.key(1), counts.shape[0], counts.shape[1], counts=counts
    )
    return np.asarray(draws[site], np.float64)


@pytest.mark.parametrize(
    ("global_guide", "n_steps"),
    [(None, 3_000), (JointGuide(rank=None), 1_000), (JointGuide(rank=1), 2_000)],
    ids=["mean_field", "full_rank", "low_rank"],
)
def test_guide_matches_the_conjugate_posterior(conjugate, global_guide, n_steps):
    counts, model, spec, mean, sd = conjugate
    guide = GuideBuilder().from_specs([spec]).with_global_guide(global_guide).build()
    fit = run_svi(model, guide, as_count_data(counts), FitConfig(n_steps=n_steps))
    draws = guide_draws(guide, fit.params, jnp.asarray(counts, jnp.float32), "p")
    assert np.std(draws) == pytest.approx(sd, rel=0.15)
    assert abs(np.mean(draws) - mean) < sd


def unconstrained_moments(draws):
    """Mean and covariance of (logit p, log r_1, ..., log r_G)."""
    x = np.column_stack([np.log(draws["p"] / (1 - draws["p"])), np.log(draws["r"])])
    return x.mean(axis=0), np.cov(x, rowvar=False)


@pytest.mark.slow
def test_full_rank_joint_guide_matches_nuts_correlations():
    """The full-rank joint guide gets NUTS's means, sds and p-r correlations.

    Tiny canonical NB (p, r of 3 genes): p and every r are strongly correlated
    (only the mean r p / (1 - p) is pinned down, correlations -0.66 to -0.95);
    the mean-field guide has none and a logit-p sd of 0.054 where NUTS has
    0.187.
    """
    n_cells, n_genes = 60, 3
    rng = np.random.default_rng(2)
    counts = rng.negative_binomial([1.0, 3.0, 8.0], 0.4, (n_cells, n_genes))
    data = jnp.asarray(counts, jnp.float32)
    model, _, _ = standard_model("nbdm", "canonical")
    mcmc = MCMC(NUTS(model), num_warmup=1_000, num_samples=4_000, progress_bar=False)
    mcmc.run(jax.random.key(0), n_cells, n_genes, counts=data)
    ref_mean, ref_cov = unconstrained_moments(mcmc.get_samples())
    ref_sd = np.sqrt(np.diag(ref_cov))
    ref_corr = ref_cov / np.outer(ref_sd, ref_sd)
    assert np.all(np.abs(ref_corr[0, 1:]) > 0.5)  # a real p-r correlation
    for global_guide in ("full_rank", "mean_field"):
        model, guide, _ = standard_model("nbdm", "canonical", global_guide=global_guide)
        config = FitConfig(n_steps=5_000, num_particles=4)
        fit = run_svi(model, guide, as_count_data(counts), config)
        draws = Predictive(guide, params=fit.params, num_samples=20_000)(
            jax.random.key(1), n_cells, n_genes, counts=data
        )
        draws = {k: np.asarray(draws[k], np.float64) for k in ("p", "r")}
        mean, cov = unconstrained_moments(draws)
        sd = np.sqrt(np.diag(cov))
        corr = cov / np.outer(sd, sd)
        if global_guide == "full_rank":
            np.testing.assert_allclose(mean, ref_mean, atol=0.25 * ref_sd.max())
            np.testing.assert_allclose(sd, ref_sd, rtol=0.2)
            np.testing.assert_allclose(corr, ref_corr, atol=0.1)
        else:  # no correlations, and p about 3.5x too narrow
            assert np.all(np.abs(corr[0, 1:]) < 0.05)
            assert sd[0] < 0.5 * ref_sd[0]
