import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.handlers import replay, seed, trace
from numpyro.infer.util import log_density
from scipy import stats

from scribe.models.builders import (
    BetaSpec,
    GaussianLatentSpec,
    GuideBuilder,
    LogNormalSpec,
    ModelBuilder,
    ModelConfig,
)
from scribe.models.components import (
    Decoder,
    Encoder,
    GroupedAmortizedGuide,
    NBWithVCPLikelihood,
    NegativeBinomialLikelihood,
)
from scribe.models.presets import standard_model

N_CELLS, N_GENES, BATCH = 8, 5, 3
COUNTS = jax.random.poisson(jax.random.key(0), 3.0, (N_CELLS, N_GENES)).astype(
    jnp.float32
)
SPECS = [
    BetaSpec("p", (), (2.0, 3.0)),
    LogNormalSpec("r", ("n_genes",), (0.5, 0.7), is_gene_specific=True),
    BetaSpec("p_capture", ("n_cells",), (3.0, 2.0), is_cell_specific=True),
]


def vcp_model():
    builder = ModelBuilder()
    for spec in SPECS:
        builder.add_param(spec)
    return builder.with_likelihood(NBWithVCPLikelihood()).build()


def run(fn, *args, rng_seed=0, **kwargs):
    return trace(seed(fn, rng_seed)).get_trace(*args, **kwargs)


def log_joint(tr):
    """Sum of scaled log-densities of the trace's sample sites."""
    total = 0.0
    for site in tr.values():
        if site["type"] == "sample":
            scale = 1.0 if site["scale"] is None else site["scale"]
            total += scale * float(jnp.sum(site["fn"].log_prob(site["value"])))
    return total


def scipy_log_joint(p, r, nu, counts, scale=1.0):
    """Reference: Beta / LogNormal priors, Beta capture prior, NB with p_hat.

    numpyro's ``NegativeBinomialProbs(r, p)`` has pmf ∝ p^k (1-p)^r, scipy's
    ``nbinom(n, q)`` has pmf ∝ q^n (1-q)^k: q = 1 - p_hat.
    """
    p, r, nu, counts = (np.asarray(x, np.float64) for x in (p, r, nu, counts))
    p_hat = p * nu / (1 - p * (1 - nu))
    cells = (
        stats.beta.logpdf(nu, 3.0, 2.0).sum()
        + stats.nbinom.logpmf(counts, r[None, :], 1 - p_hat[:, None]).sum()
    )
    return (
        stats.beta.logpdf(p, 2.0, 3.0)
        + stats.lognorm.logpdf(r, s=0.7, scale=np.exp(0.5)).sum()
        + scale * cells
    )


def test_prior_predictive_samples_counts():
    tr = run(vcp_model(), N_CELLS, N_GENES)
    site = tr["counts"]
    assert not site["is_observed"]
    assert site["value"].shape == (N_CELLS, N_GENES)
    values = np.asarray(site["value"])
    assert np.all(values >= 0) and np.all(values == np.round(values))
    assert tr["p"]["value"].shape == ()
    assert tr["r"]["value"].shape == (N_GENES,)
    assert tr["p_capture"]["value"].shape == (N_CELLS,)
    np.testing.assert_array_equal(tr["cells"]["value"], np.arange(N_CELLS))
    ref = scipy_log_joint(
        tr["p"]["value"], tr["r"]["value"], tr["p_capture"]["value"], values
    )
    assert log_joint(tr) == pytest.approx(ref, rel=1e-4)


def test_prior_predictive_counts_follow_the_prior_mean():
    """Averaged over many draws, counts have mean E[r p / (1 - p)] at fixed r, p."""
    model = (
        ModelBuilder()
        .add_param(BetaSpec("p", (), (30.0, 70.0)))
        .add_derived("r", lambda: jnp.full(N_GENES, 4.0), [])
        .with_likelihood(NegativeBinomialLikelihood())
        .build()
    )
    draws = np.stack(
        [
            np.asarray(run(model, 400, N_GENES, rng_seed=k)["counts"]["value"])
            for k in (1, 2)
        ]
    )
    # E[p / (1 - p)] for p ~ Beta(a, b) is a / (b - 1)
    assert draws.mean() == pytest.approx(4.0 * 30.0 / 69.0, rel=0.05)


def test_full_mode_observes_all_counts():
    tr = run(vcp_model(), N_CELLS, N_GENES, counts=COUNTS)
    site = tr["counts"]
    assert site["is_observed"]
    np.testing.assert_array_equal(site["value"], COUNTS)
    assert tr["p_capture"]["value"].shape == (N_CELLS,)
    ref = scipy_log_joint(
        tr["p"]["value"], tr["r"]["value"], tr["p_capture"]["value"], COUNTS
    )
    assert log_joint(tr) == pytest.approx(ref, rel=1e-4)


def test_minibatch_indexes_cells_by_the_plate_subsample():
    tr = run(vcp_model(), N_CELLS, N_GENES, counts=COUNTS, batch_size=BATCH)
    idx = np.asarray(tr["cells"]["value"])
    assert idx.shape == (BATCH,) and len(set(idx.tolist())) == BATCH
    assert tr["p_capture"]["value"].shape == (BATCH,)
    assert tr["counts"]["is_observed"]
    np.testing.assert_array_equal(tr["counts"]["value"], np.asarray(COUNTS)[idx])
    assert tr["counts"]["scale"] == pytest.approx(N_CELLS / BATCH)
    ref = scipy_log_joint(
        tr["p"]["value"],
        tr["r"]["value"],
        tr["p_capture"]["value"],
        np.asarray(COUNTS)[idx],
        scale=N_CELLS / BATCH,
    )
    assert log_joint(tr) == pytest.approx(ref, rel=1e-4)


def test_minibatch_model_replays_the_guide_subsample():
    guide = GuideBuilder().from_specs(SPECS).build()
    guide_tr = run(guide, N_CELLS, N_GENES, counts=COUNTS, batch_size=BATCH, rng_seed=3)
    model_tr = trace(replay(seed(vcp_model(), 4), guide_tr)).get_trace(
        N_CELLS, N_GENES, counts=COUNTS, batch_size=BATCH
    )
    idx = np.asarray(guide_tr["cells"]["value"])
    np.testing.assert_array_equal(model_tr["cells"]["value"], idx)
    np.testing.assert_array_equal(model_tr["counts"]["value"], np.asarray(COUNTS)[idx])
    np.testing.assert_array_equal(
        model_tr["p_capture"]["value"], guide_tr["p_capture"]["value"]
    )


def test_integer_counts_have_the_same_density_and_gradient():
    model = vcp_model()
    values = {
        "p": 0.4,
        "r": jnp.linspace(0.5, 2.0, N_GENES),
        "p_capture": jnp.linspace(0.2, 0.9, N_CELLS),
    }

    def density(params, counts):
        return log_density(model, (N_CELLS, N_GENES), {"counts": counts}, params)[0]

    as_int = jax.value_and_grad(density)(values, COUNTS.astype(jnp.int32))
    as_float = jax.value_and_grad(density)(values, COUNTS)
    ref = scipy_log_joint(values["p"], values["r"], values["p_capture"], COUNTS)
    assert float(as_int[0]) == pytest.approx(ref, rel=1e-4)
    for a, b in zip(
        jax.tree_util.tree_leaves(as_int), jax.tree_util.tree_leaves(as_float)
    ):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_linked_r_is_a_deterministic_site():
    model = (
        ModelBuilder()
        .add_param(BetaSpec("p", (), (1.0, 1.0)))
        .add_param(LogNormalSpec("mu", ("n_genes",), (0.0, 1.0)))
        .add_derived("r", lambda p, mu: mu * (1 - p) / p, ["p", "mu"])
        .with_likelihood(NegativeBinomialLikelihood())
        .build()
    )
    tr = run(model, N_CELLS, N_GENES, counts=COUNTS)
    assert tr["r"]["type"] == "deterministic"
    p, mu = float(tr["p"]["value"]), np.asarray(tr["mu"]["value"])
    np.testing.assert_allclose(tr["r"]["value"], mu * (1 - p) / p, rtol=1e-6)
    # the likelihood reads the derived r: its NB has mean mu
    np.testing.assert_allclose(tr["counts"]["fn"].mean[0], mu, rtol=1e-5)


def test_odds_ratio_preset_derives_r_and_p():
    model, _, _ = standard_model("nbdm", "odds_ratio")
    tr = run(model, N_CELLS, N_GENES, counts=COUNTS)
    phi, mu = float(tr["phi"]["value"]), np.asarray(tr["mu"]["value"])
    assert tr["p"]["type"] == tr["r"]["type"] == "deterministic"
    np.testing.assert_allclose(tr["p"]["value"], 1 / (1 + phi), rtol=1e-6)
    np.testing.assert_allclose(tr["r"]["value"], mu * phi, rtol=1e-6)
    # r p / (1 - p) = mu phi / phi = mu
    np.testing.assert_allclose(tr["counts"]["fn"].mean[0], mu, rtol=1e-5)


def test_linked_mixture_derives_r_per_component():
    model, _, _ = standard_model("zinb", "linked", n_components=3)
    tr = run(model, N_CELLS, N_GENES, ModelConfig(n_components=3), COUNTS)
    p, mu = np.asarray(tr["p"]["value"]), np.asarray(tr["mu"]["value"])
    assert p.shape == (3,) and mu.shape == (3, N_GENES)
    assert tr["gate"]["value"].shape == (3, N_GENES)
    assert tr["mixing_weights"]["value"].shape == (3,)
    np.testing.assert_allclose(
        tr["r"]["value"], mu * (1 - p[:, None]) / p[:, None], rtol=1e-5
    )


def test_derived_from_a_cell_parameter_lives_in_the_plate():
    builder = ModelBuilder()
    for spec in SPECS:
        builder.add_param(spec)
    model = (
        builder.add_derived("depth", lambda nu: 10.0 * nu, ["p_capture"])
        .with_likelihood(NBWithVCPLikelihood())
        .build()
    )
    tr = run(model, N_CELLS, N_GENES, counts=COUNTS, batch_size=BATCH)
    assert tr["depth"]["type"] == "deterministic"
    assert tr["depth"]["cond_indep_stack"][0].name == "cells"
    np.testing.assert_allclose(
        tr["depth"]["value"], 10.0 * tr["p_capture"]["value"], rtol=1e-6
    )


def test_vae_model_decodes_z_from_the_standard_normal_prior():
    decoder = Decoder(n_genes=N_GENES, output_params=("mu",), hidden_dims=(4,))
    family = GroupedAmortizedGuide(
        encoder=Encoder(latent_dim=2, hidden_dims=(4,)),
        latent_spec=GaussianLatentSpec(latent_dim=2),
        decoder=decoder,
    )
    model = (
        ModelBuilder()
        .add_param(BetaSpec("p", (), (1.0, 1.0)))
        .add_param(
            LogNormalSpec(
                "mu",
                ("n_cells", "n_genes"),
                (0.0, 1.0),
                is_cell_specific=True,
                guide_family=family,
            )
        )
        .add_derived("r", lambda p, mu: mu * (1 - p) / p, ["p", "mu"])
        .with_likelihood(NegativeBinomialLikelihood())
        .build()
    )
    tr = run(model, N_CELLS, N_GENES, counts=COUNTS, batch_size=BATCH)
    z = np.asarray(tr["z"]["value"])
    assert z.shape == (BATCH, 2)
    assert tr["mu"]["type"] == "deterministic"
    assert tr["mu"]["value"].shape == (BATCH, N_GENES)
    decoded = decoder.apply({"params": tr["z_decoder$params"]["value"]}, z)["mu"]
    np.testing.assert_allclose(tr["mu"]["value"], decoded, rtol=1e-5)
    log_prior = float(jnp.sum(tr["z"]["fn"].log_prob(z)))
    assert log_prior == pytest.approx(stats.norm.logpdf(z).sum(), rel=1e-5)


def test_build_without_likelihood_raises():
    with pytest.raises(ValueError, match="likelihood"):
        ModelBuilder().add_param(SPECS[0]).build()


def test_duplicate_and_unknown_names_raise():
    builder = ModelBuilder().add_param(BetaSpec("p", (), (1.0, 1.0)))
    with pytest.raises(ValueError, match="'p' is already defined"):
        builder.add_param(BetaSpec("p", (), (2.0, 2.0)))
    with pytest.raises(ValueError, match="'p' is already defined"):
        builder.add_derived("p", lambda: 0.5, [])
    with pytest.raises(ValueError, match=r"undefined \['mu'\]"):
        builder.add_derived("r", lambda p, mu: mu, ["p", "mu"])
    builder.add_derived("r", lambda p: p, ["p"])
    with pytest.raises(ValueError, match="'r' is already defined"):
        builder.add_param(LogNormalSpec("r", ("n_genes",), (0.0, 1.0)))


def test_bad_call_arguments_raise():
    model = vcp_model()
    with pytest.raises(ValueError, match="counts has shape"):
        run(model, N_CELLS, N_GENES, counts=COUNTS[:, :2])
    with pytest.raises(ValueError, match="batch_size"):
        run(model, N_CELLS, N_GENES, counts=COUNTS, batch_size=N_CELLS + 1)
    with pytest.raises(ValueError, match="n_genes"):
        run(model, N_CELLS, 0)
