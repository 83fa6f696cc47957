"""``standard_model`` options: upstream parity, the joint global guide, size checks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.handlers import seed, substitute, trace
from numpyro.infer import Trace_ELBO
from numpyro.infer.util import log_density
from scipy import special, stats

from scribe.models.builders import ModelConfig
from scribe.models.components import log_likelihood
from scribe.models.presets import standard_model

N_CELLS, N_GENES = 8, 5
COUNTS = jax.random.poisson(jax.random.key(0), 3.0, (N_CELLS, N_GENES)).astype(
    jnp.float32
)


def run(fn, *args, rng_seed=0, **kwargs):
    return trace(seed(fn, rng_seed)).get_trace(*args, **kwargs)


def latent_sites(tr):
    return {
        k
        for k, v in tr.items()
        if v["type"] == "sample"
        and not v["is_observed"]
        and not v["infer"].get("is_auxiliary")
    }


def check_guide_matches_model(model, guide, config=None, elbo=False):
    """Guide sites are the model's latent sites (same shapes); the ELBO is finite."""
    args = (N_CELLS, N_GENES, config, COUNTS)
    guide_tr = run(guide, *args)
    model_tr = run(model, *args)
    assert latent_sites(guide_tr) == latent_sites(model_tr)
    for name in latent_sites(guide_tr):
        assert guide_tr[name]["value"].shape == model_tr[name]["value"].shape, name
    if elbo:
        loss = Trace_ELBO().loss(jax.random.key(2), {}, model, guide, *args)
        assert np.isfinite(float(loss))
    return guide_tr, model_tr


# --- capture as an odds (upstream's odds-ratio models) --------------------------


@pytest.mark.parametrize("guide", ["mean_field", "amortized"])
def test_odds_ratio_capture_is_a_beta_prime_odds(guide):
    model, guide_fn, specs = standard_model(
        "zinbvcp", "odds_ratio", guide, n_genes=N_GENES, hidden_dims=(4,)
    )
    assert [s.name for s in specs if s.is_cell_specific] == ["phi_capture"]
    guide_tr, _ = check_guide_matches_model(model, guide_fn, elbo=True)
    assert type(guide_tr["phi_capture"]["fn"]).__name__ == "BetaPrime"
    # the model's log joint at the guide's draw, against scipy
    values = {k: guide_tr[k]["value"] for k in latent_sites(guide_tr)}
    logp, tr = log_density(model, (N_CELLS, N_GENES, None, COUNTS), {}, values)
    phi_c = np.asarray(values["phi_capture"], np.float64)
    assert tr["p_capture"]["type"] == "deterministic"
    np.testing.assert_allclose(tr["p_capture"]["value"], 1 / (1 + phi_c), rtol=1e-6)
    phi, mu, gate = (np.asarray(values[k], np.float64) for k in ("phi", "mu", "gate"))
    # odds of the thinned NB: phi-odds of p times the capture, 1/(phi (1 + phi_c))
    p_hat = 1 / (1 + phi * (1 + phi_c))[:, None]
    nb = stats.nbinom.logpmf(np.asarray(COUNTS), mu * phi, 1 - p_hat)
    zinb = np.where(
        np.asarray(COUNTS) == 0,
        np.logaddexp(np.log(gate), np.log1p(-gate) + nb),
        np.log1p(-gate) + nb,
    )
    reference = (
        stats.betaprime.logpdf(phi, 1, 1)
        + stats.lognorm.logpdf(mu, s=1.0).sum()
        + stats.beta.logpdf(gate, 1, 9).sum()
        + stats.betaprime.logpdf(phi_c, 1, 1).sum()
        + zinb.sum()
    )
    assert float(logp) == pytest.approx(reference, rel=1e-5)


@pytest.mark.parametrize(
    ("parameterization", "name", "expected"),
    [
        ("canonical", None, "p_capture"),
        ("linked", None, "p_capture"),
        ("odds_ratio", None, "phi_capture"),
        ("odds_ratio", "p_capture", "p_capture"),
        ("linked", "phi_capture", "phi_capture"),
    ],
)
def test_capture_param_name_choice(parameterization, name, expected):
    model, guide, specs = standard_model(
        "nbvcp", parameterization, capture_param_name=name
    )
    assert [s.name for s in specs if s.is_cell_specific] == [expected]
    _, model_tr = check_guide_matches_model(model, guide)
    assert model_tr["p_capture"]["value"].shape == (N_CELLS,)


def test_capture_param_name_errors():
    with pytest.raises(ValueError, match="capture_param_name"):
        standard_model("nbvcp", capture_param_name="nu")
    with pytest.raises(ValueError, match="capture_param_name"):
        standard_model("zinb", capture_param_name="phi_capture")


# --- which parameters split across mixture components ---------------------------

SPLITS = {
    # upstream's default "all": every sampled global parameter per component
    "all": {"phi": (2,), "mu": (2, N_GENES), "gate": (2, N_GENES)},
    "biological": {"phi": (2,), "mu": (2, N_GENES), "gate": (N_GENES,)},
    "mean": {"phi": (), "mu": (2, N_GENES), "gate": (N_GENES,)},
    "prob": {"phi": (2,), "mu": (N_GENES,), "gate": (N_GENES,)},
    "gate": {"phi": (), "mu": (N_GENES,), "gate": (2, N_GENES)},
    ("mu", "gate"): {"phi": (), "mu": (2, N_GENES), "gate": (2, N_GENES)},
}


@pytest.mark.parametrize("split", list(SPLITS), ids=str)
def test_mixture_params_choose_the_split_parameters(split):
    model, guide, _ = standard_model(
        "zinbvcp", "odds_ratio", n_components=2, mixture_params=split
    )
    config = ModelConfig(n_components=2)
    _, model_tr = check_guide_matches_model(model, guide, config)
    for name, shape in SPLITS[split].items():
        assert model_tr[name]["value"].shape == shape, name
    # the counts' mixture has one component per cell type whatever is shared
    fn = model_tr["counts"]["fn"]
    assert fn.mixture_size == 2 and fn.batch_shape == (N_CELLS,)


def test_mixture_default_splits_every_parameter_as_upstream():
    _, _, specs = standard_model("zinb", "linked", n_components=2)
    assert {s.name: s.is_mixture for s in specs} == {
        "p": True,
        "mu": True,
        "gate": True,
        "mixing_weights": False,
    }


def test_mixture_params_errors():
    for bad, match in (
        ("genes", "one of"),
        (["p", "r"], "not sampled global parameters"),  # linked samples mu
        ("gate", "leaves no parameter"),  # nbdm has no gate
        ([], "leaves no parameter"),
    ):
        with pytest.raises(ValueError, match=match):
            standard_model("nbdm", "linked", n_components=2, mixture_params=bad)


def test_split_log_likelihood_with_a_shared_p_and_gate():
    """Per-component log-likelihoods (assignment terms) against scipy."""
    rng = np.random.default_rng(3)
    counts = rng.poisson(2.0, (6, 4)).astype(np.float32)
    params = {
        "p": np.float32(0.35),  # shared
        "r": rng.uniform(0.5, 3.0, (3, 4)).astype(np.float32),
        "gate": rng.uniform(0.05, 0.3, 4).astype(np.float32),  # shared
        "p_capture": rng.uniform(0.3, 0.9, 6).astype(np.float32),
        "mixing_weights": np.array([0.2, 0.5, 0.3], np.float32),
    }
    got = log_likelihood(jnp.asarray(counts), params, "cell", split_components=True)
    p_hat = 0.35 * params["p_capture"] / (1 - 0.35 * (1 - params["p_capture"]))
    expected = np.empty((6, 3))
    for k in range(3):
        nb = stats.nbinom.logpmf(counts, params["r"][k], 1 - p_hat[:, None])
        gate = params["gate"]
        zinb = np.where(
            counts == 0,
            np.logaddexp(np.log(gate), np.log1p(-gate) + nb),
            np.log1p(-gate) + nb,
        )
        expected[:, k] = np.log(params["mixing_weights"][k]) + zinb.sum(axis=1)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)
    total = log_likelihood(jnp.asarray(counts), params, "cell")
    np.testing.assert_allclose(total, special.logsumexp(expected, axis=1), rtol=1e-5)


# --- the joint guide of the global parameters -----------------------------------


def joint_params_and_covariance(global_guide, size, rng):
    """Random joint-guide parameters and the covariance they stand for."""
    scale = rng.uniform(0.1, 0.3, size)
    if global_guide == "full_rank":
        tril = rng.normal(0.0, 1.0, (size, size))
        # scale_tril = diag(scale) (I + strictly lower part / sqrt(size))
        unit = np.eye(size) + np.tril(tril, -1) / np.sqrt(size)
        factors = {"global_tril": tril}
        cov = (scale[:, None] * unit) @ (scale[:, None] * unit).T
    else:
        factor = rng.normal(0.0, 1.0, (size, 2))
        factors = {"global_cov_factor": factor}
        cov = np.diag(scale) @ (factor @ factor.T / 2 + np.eye(size)) @ np.diag(scale)
    params = {"global_loc": rng.normal(0.0, 0.5, size), "global_scale": scale}
    params = {k: v.astype(np.float32) for k, v in {**params, **factors}.items()}
    return params, cov


@pytest.mark.parametrize("global_guide", ["full_rank", "low_rank"])
def test_joint_guide_density_is_the_normal_through_the_bijections(global_guide):
    """log q = log N(x) - log|J|, with x = (logit p, log mu, logit gate)."""
    model, guide, _ = standard_model(
        "zinbvcp",
        "linked",
        global_guide=global_guide,
        n_genes=N_GENES,
        guide_rank=2,
    )
    size = 1 + 2 * N_GENES
    params, cov = joint_params_and_covariance(
        global_guide, size, np.random.default_rng(0)
    )
    tr = trace(seed(substitute(guide, params), 1)).get_trace(
        N_CELLS, N_GENES, counts=COUNTS
    )
    assert tr["_global_latent"]["infer"] == {"is_auxiliary": True}
    p, mu, gate = (np.asarray(tr[k]["value"], np.float64) for k in ("p", "mu", "gate"))
    x = np.concatenate([[special.logit(p)], np.log(mu), special.logit(gate)])
    log_jacobian = (
        np.log(p * (1 - p)) + np.log(mu).sum() + np.log(gate * (1 - gate)).sum()
    )
    expected = stats.multivariate_normal.logpdf(x, params["global_loc"], cov)
    got = sum(
        float(jnp.sum(tr[k]["fn"].log_prob(tr[k]["value"])))
        for k in ("_global_latent", "p", "mu", "gate")
    )
    assert got == pytest.approx(expected - log_jacobian, rel=1e-4)
    # cell-level sites keep their own (mean-field) family
    assert type(tr["p_capture"]["fn"]).__name__ == "Beta"
    check_guide_matches_model(model, guide, elbo=global_guide == "full_rank")


@pytest.mark.parametrize(
    ("case", "size"),
    [
        (("nbdm", "canonical", "mean_field", None, "low_rank"), 1 + 5),
        # phi [2], mu [2, 5], gate [2, 5], the weights' 2 - 1
        (("zinb", "odds_ratio", "mean_field", 2, "full_rank"), 2 + 10 + 10 + 1),
        (("nbvcp", "linked", "amortized", 2, "low_rank"), 2 + 10 + 1),
        (("zinbvcp", "linked", "vae", None, "full_rank"), 1 + 5),  # mu per cell
    ],
    ids=str,
)
def test_joint_guide_sites_match_every_model(case, size):
    model_name, parameterization, guide, k, global_guide = case
    model, guide_fn, _ = standard_model(
        model_name,
        parameterization,
        guide,
        n_components=k,
        n_genes=N_GENES,
        guide_rank=2,
        latent_dim=2,
        hidden_dims=(4,),
        global_guide=global_guide,
    )
    config = None if k is None else ModelConfig(n_components=k)
    guide_tr, _ = check_guide_matches_model(model, guide_fn, config)
    assert guide_tr["_global_latent"]["value"].shape == (size,)
    assert guide_tr["global_loc"]["value"].shape == (size,)


def test_joint_guide_errors():
    with pytest.raises(ValueError, match="global_guide"):
        standard_model("nbdm", global_guide="dense")
    with pytest.raises(ValueError, match="guide='low_rank'"):
        standard_model("nbdm", guide="low_rank", global_guide="low_rank")
    # 50,001 values: a 50,001 x 50,001 scale_tril is refused before allocation
    with pytest.raises(ValueError, match="global_guide='full_rank'") as err:
        standard_model("nbdm", n_genes=50_000, global_guide="full_rank")
    assert "GiB" in str(err.value) and "global_guide='low_rank'" in str(err.value)
    # without n_genes the guide refuses when it first runs
    _, guide, _ = standard_model("nbdm", global_guide="full_rank")
    with pytest.raises(ValueError, match="global_guide='full_rank'"):
        run(guide, 10, 50_000)
    with pytest.raises(ValueError, match=r"guide_rank.*\[1, 11\]"):
        standard_model("nbdm", n_genes=10, global_guide="low_rank", guide_rank=12)


# --- sizes refused before allocation --------------------------------------------


def test_guide_rank_is_refused_outside_its_range():
    with pytest.raises(ValueError, match=r"guide_rank must be in \[1, 50\]") as err:
        standard_model("nbdm", guide="low_rank", n_genes=50, guide_rank=10**9)
    assert "GiB" in str(err.value)  # the factor's estimated size
    _, guide, _ = standard_model("nbdm", guide="low_rank", guide_rank=10**9)
    with pytest.raises(ValueError, match=r"rank must be in \[1, 50\]"):
        run(guide, 10, 50)  # the guide checks too when n_genes was not given
    for bad, error in ((2.5, TypeError), ("8", TypeError), (0, ValueError)):
        with pytest.raises(error, match="guide_rank"):
            standard_model("nbdm", guide_rank=bad)


@pytest.mark.parametrize(
    ("hidden_dims", "error"),
    [
        ("64", TypeError),
        (64.0, TypeError),
        (64, TypeError),
        ((64.0, 32), TypeError),
        ((64, 0), ValueError),
    ],
)
def test_hidden_dims_must_be_positive_ints(hidden_dims, error):
    with pytest.raises(error, match="hidden_dims"):
        standard_model("nbvcp", guide="amortized", hidden_dims=hidden_dims)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"guide": "vae", "hidden_dims": (10**9,)}, "hidden_dims"),
        ({"guide": "vae", "latent_dim": 10**9}, "latent_dim"),
        ({"guide": "amortized", "hidden_dims": (10**5, 10**5)}, "hidden_dims"),
    ],
    ids=str,
)
def test_networks_that_cannot_fit_are_refused(kwargs, named):
    model = "nbvcp" if kwargs["guide"] == "amortized" else "nbdm"
    with pytest.raises(ValueError, match=named) as err:
        standard_model(model, "linked", n_genes=2_000, **kwargs)
    assert "parameters" in str(err.value) and "GiB" in str(err.value)


def test_latent_dim_must_be_a_positive_int():
    for bad, error in (("8", TypeError), (8.0, TypeError), (0, ValueError)):
        with pytest.raises(error, match="latent_dim"):
            standard_model("nbdm", "linked", "vae", n_genes=5, latent_dim=bad)


# --- the amortized capture guide on realistic library sizes ---------------------


def negative_binomial_counts(n_cells, n_genes, odds, rng):
    """``NB(2, p)`` counts in numpyro's convention, ``odds = p / (1 - p)``."""
    return rng.negative_binomial(2.0, 1 / (1 + np.asarray(odds)), (n_cells, n_genes))


@pytest.mark.parametrize(
    ("model", "seed"),
    [("nbvcp", 0), ("nbvcp", 1), pytest.param("zinbvcp", 2, marks=pytest.mark.slow)],
)
def test_amortized_guide_starts_finite_on_large_library_sizes(model, seed):
    """200 x 50, mean 4.7 per gene (library sizes ~230): the first ELBO is finite.

    Unstandardized log totals (~5.5) used to give the amortizer's first Beta
    parameters down to 3e-4, capture draws of 1e-38 and a -inf likelihood.
    """
    rng = np.random.default_rng(seed)
    counts = jnp.asarray(negative_binomial_counts(200, 50, 7 / 3, rng), jnp.float32)
    model_fn, guide_fn, _ = standard_model(model, guide="amortized", n_genes=50)
    loss = Trace_ELBO().loss(
        jax.random.key(seed), {}, model_fn, guide_fn, 200, 50, counts=counts
    )
    assert np.isfinite(float(loss))
    tr = run(guide_fn, 200, 50, counts=counts, rng_seed=seed)
    # every cell starts at the mean-field initial Beta: mean 1/2, logit sd 0.1
    np.testing.assert_allclose(tr["p_capture"]["fn"].concentration1, 200, rtol=1e-4)
    np.testing.assert_allclose(tr["p_capture"]["fn"].concentration0, 200, rtol=1e-4)


def fit_capture(model, parameterization, n_steps):
    """Amortized fit of 200 x 50 counts with a simulated capture in [0.1, 1]."""
    import scribe

    rng = np.random.default_rng(1)
    capture = rng.uniform(0.1, 1.0, 200)
    odds = 20.0 * capture[:, None]  # mean 4 to 40 per gene
    counts = negative_binomial_counts(200, 50, odds, rng)
    assert counts.sum(axis=1).min() > 150 and counts.sum(axis=1).max() > 1_500
    res = scribe.fit(
        counts,
        model,
        parameterization,
        "amortized",
        n_steps=n_steps,
        progress=False,
    )
    assert np.all(np.isfinite(res.loss_history))
    draws = res.posterior_samples(n_samples=50, return_sites=["p_capture"])
    return capture, draws["p_capture"].mean(axis=0)


def test_amortized_fit_recovers_the_capture_ordering():
    capture, fitted = fit_capture("nbvcp", "odds_ratio", 800)
    assert stats.spearmanr(fitted, capture)[0] > 0.9


@pytest.mark.slow
@pytest.mark.parametrize("parameterization", ["canonical", "linked"])
def test_amortized_zinbvcp_fit_recovers_the_capture_ordering(parameterization):
    capture, fitted = fit_capture("zinbvcp", parameterization, 2_000)
    assert stats.spearmanr(fitted, capture)[0] > 0.9
