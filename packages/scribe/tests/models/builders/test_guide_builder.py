import itertools

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import optax
import pytest
from numpyro.handlers import replay, seed, substitute, trace
from numpyro.infer import SVI, Trace_ELBO
from numpyro.optim import optax_to_numpyro
from scipy import stats

from scribe.models.builders import (
    BetaSpec,
    GaussianLatentSpec,
    GuideBuilder,
    LogNormalSpec,
    ModelBuilder,
    ModelConfig,
    setup_guide,
)
from scribe.models.components import (
    TOTAL_COUNT,
    AmortizedGuide,
    Amortizer,
    Decoder,
    Encoder,
    GroupedAmortizedGuide,
    LowRankGuide,
    MeanFieldGuide,
    NBWithVCPLikelihood,
    NegativeBinomialLikelihood,
)
from scribe.models.presets import GUIDES, LIKELIHOODS, PARAMETERIZATIONS, standard_model

N_CELLS, N_GENES, BATCH = 8, 5, 3
COUNTS = jax.random.poisson(jax.random.key(0), 3.0, (N_CELLS, N_GENES)).astype(
    jnp.float32
)
AMORTIZER = Amortizer(
    sufficient_statistic=TOTAL_COUNT, hidden_dims=(4,), output_params=("alpha", "beta")
)
VAE = GroupedAmortizedGuide(
    encoder=Encoder(latent_dim=2, hidden_dims=(4,)),
    latent_spec=GaussianLatentSpec(latent_dim=2),
    decoder=Decoder(n_genes=N_GENES, output_params=("mu",), hidden_dims=(4,)),
)
FAMILIES = {
    "mean_field": [
        BetaSpec("p", (), (2.0, 3.0), guide_family=MeanFieldGuide()),
        LogNormalSpec("r", ("n_genes",), (0.5, 0.7)),
        BetaSpec("p_capture", ("n_cells",), (3.0, 2.0), is_cell_specific=True),
    ],
    "low_rank": [
        BetaSpec("p", (), (2.0, 3.0)),
        LogNormalSpec("r", ("n_genes",), (0.5, 0.7), guide_family=LowRankGuide(2)),
        BetaSpec("p_capture", ("n_cells",), (3.0, 2.0), is_cell_specific=True),
    ],
    "amortized": [
        BetaSpec("p", (), (2.0, 3.0)),
        LogNormalSpec("r", ("n_genes",), (0.5, 0.7)),
        BetaSpec(
            "p_capture",
            ("n_cells",),
            (3.0, 2.0),
            is_cell_specific=True,
            guide_family=AmortizedGuide(amortizer=AMORTIZER),
        ),
    ],
    "vae": [
        BetaSpec("p", (), (2.0, 3.0)),
        LogNormalSpec(
            "mu",
            ("n_cells", "n_genes"),
            (0.0, 1.0),
            is_cell_specific=True,
            guide_family=VAE,
        ),
        BetaSpec("p_capture", ("n_cells",), (3.0, 2.0), is_cell_specific=True),
    ],
}


def build(specs):
    builder = ModelBuilder()
    for spec in specs:
        builder.add_param(spec)
    if "mu" in {s.name for s in specs}:
        builder.add_derived("r", lambda p, mu: mu * (1 - p) / p, ["p", "mu"])
    model = builder.with_likelihood(NBWithVCPLikelihood()).build()
    return model, GuideBuilder().from_specs(specs).build()


def run(fn, *args, rng_seed=0, **kwargs):
    return trace(seed(fn, rng_seed)).get_trace(*args, **kwargs)


def sample_sites(tr, observed=False):
    return {
        k
        for k, v in tr.items()
        if v["type"] == "sample" and v.get("is_observed", False) == observed
    }


def check_guide_against_model(model, guide, *args, **kwargs):
    """Guide sites are the model's latent sites, same shapes; the ELBO is finite."""
    guide_tr = run(guide, *args, **kwargs)
    model_tr = trace(replay(seed(model, 1), guide_tr)).get_trace(*args, **kwargs)
    guide_sites = sample_sites(guide_tr)
    assert guide_sites <= sample_sites(model_tr)
    assert sample_sites(model_tr, observed=True) == {"counts"}
    for name in guide_sites:
        assert guide_tr[name]["value"].shape == model_tr[name]["value"].shape, name
    loss = Trace_ELBO().loss(jax.random.key(2), {}, model, guide, *args, **kwargs)
    assert np.isfinite(float(loss))
    return guide_tr, model_tr


@pytest.mark.parametrize("batch_size", [None, BATCH])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_guide_sites_are_model_sites(family, batch_size):
    model, guide = build(FAMILIES[family])
    guide_tr, model_tr = check_guide_against_model(
        model, guide, N_CELLS, N_GENES, counts=COUNTS, batch_size=batch_size
    )
    rows = N_CELLS if batch_size is None else batch_size
    assert model_tr["counts"]["value"].shape == (rows, N_GENES)
    assert guide_tr["p_capture"]["value"].shape == (rows,)
    if family == "vae":
        assert guide_tr["z"]["value"].shape == (rows, 2)
        assert "mu" not in sample_sites(guide_tr)  # decoded: deterministic
        assert model_tr["mu"]["value"].shape == (rows, N_GENES)


PRESET_CASES = [
    (m, par, g, k)
    for m, par, g, k in itertools.product(
        LIKELIHOODS, PARAMETERIZATIONS, GUIDES, (None, 2)
    )
    if not (g == "amortized" and "vcp" not in m)
    and not (g == "vae" and (par != "linked" or k is not None))
]
# every model, parameterization, guide and mixture flag at least once
FAST_PRESETS = [
    ("nbdm", "canonical", "mean_field", None),
    ("zinb", "odds_ratio", "low_rank", 2),
    ("nbvcp", "linked", "amortized", 2),
    ("zinbvcp", "linked", "vae", None),
    ("zinbvcp", "odds_ratio", "mean_field", 2),
]


def check_preset(model_name, parameterization, guide_name, n_components, batch):
    model, guide, _ = standard_model(
        model_name,
        parameterization,
        guide_name,
        n_components=n_components,
        n_genes=N_GENES,
        guide_rank=2,
        latent_dim=2,
        hidden_dims=(4,),
    )
    config = None if n_components is None else ModelConfig(n_components=n_components)
    check_guide_against_model(model, guide, N_CELLS, N_GENES, config, COUNTS, batch)


@pytest.mark.parametrize("case", FAST_PRESETS)
def test_preset_guides_match_models(case):
    assert set(PRESET_CASES) >= set(FAST_PRESETS)
    check_preset(*case, batch=BATCH)


@pytest.mark.slow
@pytest.mark.parametrize("batch", [None, BATCH])
@pytest.mark.parametrize("case", PRESET_CASES)
def test_every_preset_guide_matches_its_model(case, batch):
    check_preset(*case, batch=batch)


def test_mean_field_guide_densities():
    """Per-cell mean-field parameters are indexed by the plate's subsample."""
    _, guide = build(FAMILIES["mean_field"])
    tr = run(guide, N_CELLS, N_GENES, counts=COUNTS, batch_size=BATCH)
    assert tr["p_capture_mean"]["value"].shape == (N_CELLS,)
    # Beta(2, 3) prior -> guide mean 0.4, concentration 1 / (0.1^2 0.4 0.6):
    # the logit's sd is about 0.1, as the normal guides' scale
    np.testing.assert_allclose(tr["p_mean"]["value"], 0.4, rtol=1e-6)
    np.testing.assert_allclose(tr["p_concentration"]["value"], 1 / 0.0024, rtol=1e-6)
    draws = tr["p"]["fn"].sample(jax.random.key(3), (20_000,))
    assert np.std(np.log(draws / (1 - draws))) == pytest.approx(0.1, rel=0.05)
    np.testing.assert_allclose(tr["r_scale"]["value"], 0.1)  # tighter than prior
    idx = np.asarray(tr["cells"]["value"])
    nu = np.asarray(tr["p_capture"]["value"])
    mean = np.asarray(tr["p_capture_mean"]["value"])[idx]
    concentration = np.asarray(tr["p_capture_concentration"]["value"])[idx]
    ref = stats.beta.logpdf(nu, mean * concentration, (1 - mean) * concentration)
    np.testing.assert_allclose(tr["p_capture"]["fn"].log_prob(nu), ref, rtol=1e-4)
    r = np.asarray(tr["r"]["value"])
    ref_r = stats.lognorm.logpdf(r, s=0.1, scale=np.exp(0.5)).sum()
    assert float(tr["r"]["fn"].log_prob(r)) == pytest.approx(ref_r, rel=1e-4)


def test_low_rank_guide_density():
    """log q(r) = log MVN(log r; loc, F F^T + D) - sum(log r)."""
    _, guide = build(FAMILIES["low_rank"])
    params = {
        "loc": np.linspace(-1.0, 1.0, N_GENES),
        "cov_factor": np.linspace(-0.3, 0.3, 2 * N_GENES).reshape(N_GENES, 2),
        "cov_diag": np.linspace(0.05, 0.2, N_GENES),
    }
    # a covariance with off-diagonal terms, substituted for the initial values
    tr = trace(
        seed(substitute(guide, {f"r_{k}": v for k, v in params.items()}), 0)
    ).get_trace(N_CELLS, N_GENES, counts=COUNTS)
    r = np.asarray(tr["r"]["value"], np.float64)
    assert r.shape == (N_GENES,) and np.all(r > 0)
    cov = params["cov_factor"] @ params["cov_factor"].T + np.diag(params["cov_diag"])
    ref = stats.multivariate_normal.logpdf(np.log(r), params["loc"], cov) - np.sum(
        np.log(r)
    )
    assert float(tr["r"]["fn"].log_prob(r)) == pytest.approx(ref, rel=1e-4)


def test_low_rank_guide_rejects_bad_specs():
    scalar = [BetaSpec("p", (), (1.0, 1.0))]
    for spec in (
        LogNormalSpec("s", (), (0.0, 1.0), guide_family=LowRankGuide(2)),
        LogNormalSpec(
            "c",
            ("n_cells",),
            (0.0, 1.0),
            is_cell_specific=True,
            guide_family=LowRankGuide(2),
        ),
    ):
        guide = GuideBuilder().from_specs([*scalar, spec]).build()
        with pytest.raises(ValueError, match="LowRankGuide"):
            run(guide, N_CELLS, N_GENES, counts=COUNTS)
    with pytest.raises(ValueError, match="rank"):
        LowRankGuide(0)


def softplus(x):
    return np.logaddexp(x, 0.0)


def test_amortized_guide_applies_the_network_to_total_counts():
    """Standardized log totals in; a zero output is the initial mean-field guide."""
    _, guide = build(FAMILIES["amortized"])
    tr = run(guide, N_CELLS, N_GENES, counts=COUNTS, batch_size=BATCH)
    params = tr["p_capture_amortizer$params"]["value"]
    log_totals = np.log1p(np.asarray(COUNTS).sum(axis=1, keepdims=True))
    # standardized by the cells it was initialized on (all of them)
    np.testing.assert_allclose(params["input_loc"], log_totals.mean(0), rtol=1e-5)
    np.testing.assert_allclose(params["input_scale"], log_totals.std(0), rtol=1e-5)
    fn = tr["p_capture"]["fn"]
    # zero output weights: Beta(3, 2) prior -> mean 0.6, concentration
    # 1 / (0.1^2 0.6 0.4) for every cell
    kappa = 1 / (0.01 * 0.24)
    np.testing.assert_allclose(fn.concentration1, 0.6 * kappa + 1e-4, rtol=1e-5)
    np.testing.assert_allclose(fn.concentration0, 0.4 * kappa + 1e-4, rtol=1e-5)
    moved = jax.tree_util.tree_map(lambda w: w + 0.3, params)
    tr = trace(
        seed(substitute(guide, {"p_capture_amortizer$params": moved}), 0)
    ).get_trace(N_CELLS, N_GENES, counts=COUNTS, batch_size=BATCH)
    idx = np.asarray(tr["cells"]["value"])
    raw = AMORTIZER.apply({"params": moved}, log_totals[idx])
    fn = tr["p_capture"]["fn"]
    for value, init, out in (
        (fn.concentration1, 0.6 * kappa, raw["alpha"]),
        (fn.concentration0, 0.4 * kappa, raw["beta"]),
    ):
        expected = init * softplus(np.asarray(out) + np.log(np.e - 1)) + 1e-4
        np.testing.assert_allclose(value, expected, rtol=1e-5)


def svi_params(model, guide, steps, **kwargs):
    """Parameters at initialization and after ``steps`` jitted SVI steps."""
    svi = SVI(model, guide, optax_to_numpyro(optax.adam(0.05)), Trace_ELBO())
    args = (N_CELLS, N_GENES, None, COUNTS)
    before = svi.get_params(svi.init(jax.random.key(0), *args, **kwargs))
    result = svi.run(jax.random.key(0), steps, *args, progress_bar=False, **kwargs)
    assert np.all(np.isfinite(result.losses))
    return before, result.params


def max_change(before, after):
    deltas = jax.tree_util.tree_map(lambda a, b: jnp.max(jnp.abs(a - b)), before, after)
    return min(float(d) for d in jax.tree_util.tree_leaves(deltas))


def test_amortizer_params_are_registered_and_trained():
    before, after = svi_params(*build(FAMILIES["amortized"]), 3, batch_size=BATCH)
    name = "p_capture_amortizer$params"
    assert name in before
    assert jax.tree_util.tree_structure(before[name]) == jax.tree_util.tree_structure(
        after[name]
    )
    fixed = ("input_loc", "input_scale")  # the standardization stays put
    for key in fixed:
        np.testing.assert_array_equal(before[name][key], after[name][key])
    weights = [
        {k: v for k, v in p[name].items() if k not in fixed} for p in (before, after)
    ]
    assert max_change(*weights) > 0  # every weight moved


def test_vae_encoder_and_decoder_params_are_trained():
    before, after = svi_params(*build(FAMILIES["vae"]), 3, batch_size=BATCH)
    for name in ("z_encoder$params", "z_decoder$params"):
        assert max_change(before[name], after[name]) > 0, name


def test_vae_guide_encodes_the_batch_counts():
    _, guide = build(FAMILIES["vae"])
    tr = run(guide, N_CELLS, N_GENES, counts=COUNTS, batch_size=BATCH)
    idx = np.asarray(tr["cells"]["value"])
    out = VAE.encoder.apply(
        {"params": tr["z_encoder$params"]["value"]}, np.asarray(COUNTS)[idx]
    )
    fn = tr["z"]["fn"]
    assert fn.event_shape == (2,) and fn.batch_shape == (BATCH,)
    np.testing.assert_allclose(fn.base_dist.loc, out["loc"], rtol=1e-5)
    np.testing.assert_allclose(
        fn.base_dist.scale, np.exp(0.5 * np.asarray(out["log_scale"])), rtol=1e-5
    )


def test_latent_spec_moments_and_prior():
    spec = GaussianLatentSpec(latent_dim=3)
    loc = jnp.array([-2.0, 0.0, 5.0])
    guide = spec.make_guide_dist({"loc": loc, "log_scale": jnp.zeros(3)})
    z = np.asarray(guide.sample(jax.random.key(0), (20_000,)))
    np.testing.assert_allclose(z.mean(axis=0), loc, atol=0.03)
    np.testing.assert_allclose(z.std(axis=0), 1.0, atol=0.02)
    prior = spec.make_prior_dist()
    assert prior.event_shape == (3,)
    x = np.array([[0.3, -1.2, 2.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(
        prior.log_prob(x), stats.norm.logpdf(x).sum(axis=1), rtol=1e-6
    )


class PointMassGuide:
    """A user-defined family: a delta at a learnable point."""


def test_user_registered_guide_rule_is_used():
    @setup_guide.register(BetaSpec, PointMassGuide, dict, object)
    def _point_mass(spec, family, dims, model_config, **kwargs):
        value = numpyro.param(f"{spec.name}_point", 0.25)
        return numpyro.sample(spec.name, dist.Delta(value))

    guide = (
        GuideBuilder()
        .from_specs([BetaSpec("p", (), (1.0, 1.0), guide_family=PointMassGuide())])
        .build()
    )
    tr = run(guide, N_CELLS, N_GENES, counts=COUNTS)
    assert isinstance(tr["p"]["fn"], dist.Delta)
    assert float(tr["p"]["value"]) == pytest.approx(0.25)


def test_unregistered_pair_raises_type_error_naming_both():
    class Unknown:
        pass

    for spec, family in (
        (BetaSpec("p", (), (1.0, 1.0)), LowRankGuide(2)),
        (LogNormalSpec("r", ("n_genes",), (0.0, 1.0)), Unknown()),
    ):
        guide = (
            GuideBuilder()
            .from_specs([spec.model_copy(update={"guide_family": family})])
            .build()
        )
        with pytest.raises(TypeError, match=type(spec).__name__) as err:
            run(guide, N_CELLS, N_GENES, counts=COUNTS)
        assert type(family).__name__ in str(err.value)


def test_guide_builder_errors():
    with pytest.raises(ValueError, match="from_specs"):
        GuideBuilder().build()
    global_amortized = BetaSpec(
        "p", (), (1.0, 1.0), guide_family=AmortizedGuide(amortizer=AMORTIZER)
    )
    with pytest.raises(ValueError, match="cell-specific"):
        GuideBuilder().from_specs([global_amortized]).build()
    wrong_outputs = FAMILIES["amortized"][2].model_copy(
        update={
            "guide_family": AmortizedGuide(
                amortizer=AMORTIZER.clone(output_params=("loc", "scale"))
            )
        }
    )
    with pytest.raises(ValueError, match="output_params"):
        GuideBuilder().from_specs([wrong_outputs]).build()
    _, guide = build(FAMILIES["amortized"])
    with pytest.raises(ValueError, match="counts"):
        run(guide, N_CELLS, N_GENES)


def beta_posterior_fit(n_cells, n_genes, r, particles, steps):
    """Fit the mean-field Beta guide of p ~ Beta(2, 3), counts ~ NB(r, p), r fixed.

    NB(k; r, p) ∝ p^k (1 - p)^r, so the posterior is
    Beta(2 + sum k, 3 + n_cells n_genes r).
    """
    counts = dist.NegativeBinomialProbs(r, 0.3).sample(
        jax.random.key(5), (n_cells, n_genes)
    )
    spec = BetaSpec("p", (), (2.0, 3.0))
    model = (
        ModelBuilder()
        .add_param(spec)
        .add_derived("r", lambda: jnp.full(n_genes, r), [])
        .with_likelihood(NegativeBinomialLikelihood())
        .build()
    )
    guide = GuideBuilder().from_specs([spec]).build()
    schedule = optax.exponential_decay(0.1, steps, 0.02)
    svi = SVI(
        model,
        guide,
        optax_to_numpyro(optax.adam(schedule)),
        Trace_ELBO(num_particles=particles),
    )
    result = svi.run(
        jax.random.key(1), steps, n_cells, n_genes, None, counts, progress_bar=False
    )
    mean, concentration = result.params["p_mean"], result.params["p_concentration"]
    fitted = np.array([mean * concentration, (1 - mean) * concentration])
    exact = np.array([2.0 + float(counts.sum()), 3.0 + n_cells * n_genes * r])
    return fitted, exact


def test_mean_field_beta_matches_the_analytic_posterior():
    fitted, exact = beta_posterior_fit(5, 2, 1.5, particles=32, steps=1000)
    np.testing.assert_allclose(fitted, exact, rtol=0.03)


@pytest.mark.slow
def test_mean_field_beta_matches_a_concentrated_analytic_posterior():
    fitted, exact = beta_posterior_fit(20, 5, 2.0, particles=64, steps=3000)
    assert exact.sum() > 250
    np.testing.assert_allclose(fitted, exact, rtol=0.02)
