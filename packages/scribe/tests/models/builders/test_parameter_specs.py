import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
from numpyro.distributions import constraints
from numpyro.handlers import seed, trace
from scipy import stats

from scribe.models.builders import (
    BetaPrimeSpec,
    BetaSpec,
    DirichletSpec,
    ExpNormalSpec,
    GaussianLatentSpec,
    LogNormalSpec,
    SigmoidNormalSpec,
    SoftplusNormalSpec,
    sample_prior,
)
from scribe.models.components.distributions import BetaPrime

DIMS = {"n_cells": 7, "n_genes": 5, "n_components": 3}


def sites(fn):
    return trace(seed(fn, 0)).get_trace()


def test_positional_construction_and_frozen():
    spec = BetaSpec("p", (), (2.0, 3.0))
    assert (spec.name, spec.shape_dims, spec.default_params) == ("p", (), (2.0, 3.0))
    assert spec.prior_params == (2.0, 3.0)
    assert BetaSpec("p", (), (2.0, 3.0), prior=(1.0, 1.0)).prior_params == (1.0, 1.0)
    with pytest.raises(ValueError):
        spec.name = "q"
    with pytest.raises(TypeError, match="positional"):
        BetaSpec("p", (), (1.0, 1.0), "extra")


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (
            lambda: BetaSpec("p", (), (0.0, 1.0)),
            r"default_params\[0\] must be positive",
        ),
        (
            lambda: BetaSpec("p", (), (1.0, -2.0)),
            r"default_params\[1\] must be positive",
        ),
        (lambda: BetaPrimeSpec("phi", (), (1.0, 0.0)), "must be positive"),
        (lambda: LogNormalSpec("r", (), (0.0, 0.0)), r"\[1\] must be positive"),
        (lambda: BetaSpec("p", (), (1.0,)), "tuple of 2 numbers"),
        (lambda: BetaSpec("p", (), (1.0, 1.0), prior=(1.0, 2.0, 3.0)), "prior"),
        (
            lambda: BetaSpec(
                "p", (), (1.0, 1.0), is_mixture=True, is_cell_specific=True
            ),
            "cannot be both",
        ),
    ],
)
def test_invalid_specs_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_negative_lognormal_location_is_allowed():
    assert LogNormalSpec("r", (), (-2.0, 0.5)).prior_params == (-2.0, 0.5)


def test_support_and_arg_constraints():
    assert BetaSpec("p", (), (1.0, 1.0)).support is constraints.unit_interval
    assert LogNormalSpec("r", (), (0.0, 1.0)).support is constraints.positive
    assert BetaPrimeSpec("phi", (), (1.0, 1.0)).support is constraints.positive
    assert SigmoidNormalSpec("p", (), (0.0, 1.0)).support == constraints.unit_interval
    assert ExpNormalSpec("r", (), (0.0, 1.0)).support == constraints.positive
    assert (
        SoftplusNormalSpec("r", (), (0.0, 1.0)).support == constraints.softplus_positive
    )
    assert (
        DirichletSpec("w", ("n_components",), (1.0, 1.0)).support is constraints.simplex
    )
    assert set(BetaSpec("p", (), (1.0, 1.0)).arg_constraints) == {
        "concentration1",
        "concentration0",
    }


def test_sample_prior_shapes_and_sites():
    specs = [
        BetaSpec("p", (), (1.0, 1.0)),
        LogNormalSpec("r", ("n_genes",), (0.0, 1.0), is_gene_specific=True),
        SoftplusNormalSpec("mu", ("n_genes",), (0.0, 1.0), is_mixture=True),
        DirichletSpec("mixing_weights", ("n_components",), (1.0,)),
    ]

    def model():
        for spec in specs:
            sample_prior(spec, DIMS, None)

    tr = sites(model)
    assert tr["p"]["value"].shape == ()
    assert tr["r"]["value"].shape == (5,)
    assert tr["mu"]["value"].shape == (3, 5)  # the constrained site name
    assert bool(jnp.all(tr["mu"]["value"] > 0))
    assert tr["mixing_weights"]["value"].shape == (3,)
    assert float(tr["mixing_weights"]["value"].sum()) == pytest.approx(1.0, abs=1e-6)


def test_missing_dimension_is_reported():
    spec = LogNormalSpec("r", ("n_genes",), (0.0, 1.0))
    with pytest.raises(ValueError, match="n_genes"):
        spec.resolve_shape({"n_cells": 3})


def test_beta_prime_density_and_odds_relation():
    x = np.array([0.05, 0.5, 2.0, 9.0])
    np.testing.assert_allclose(
        BetaPrime(2.0, 3.0).log_prob(x), stats.betaprime.logpdf(x, 2.0, 3.0), atol=2e-5
    )
    # p ~ Beta(a, b) => (1 - p) / p ~ BetaPrime(b, a): compare quantiles
    p = dist.Beta(2.0, 5.0).sample(jax.random.key(1), (200_000,))
    odds = np.sort(np.asarray((1 - p) / p))
    q = np.array([0.1, 0.5, 0.9])
    np.testing.assert_allclose(
        odds[(q * odds.size).astype(int)], stats.betaprime.ppf(q, 5.0, 2.0), rtol=0.02
    )


def test_gaussian_latent_spec():
    spec = GaussianLatentSpec(latent_dim=4)
    assert spec.sample_site == "z"
    guide = spec.make_guide_dist(
        {"loc": jnp.zeros((1000, 4)), "log_scale": jnp.zeros(4)}
    )
    assert guide.event_shape == (4,)
    z = guide.sample(jax.random.key(0))
    assert float(jnp.std(z)) == pytest.approx(1.0, abs=0.05)
    wide = spec.make_guide_dist({"loc": 0.0, "log_scale": jnp.log(4.0) * jnp.ones(4)})
    np.testing.assert_allclose(wide.base_dist.scale, 2.0)
    assert spec.make_prior_dist().event_shape == (4,)
    with pytest.raises(ValueError, match="log_scale"):
        spec.make_guide_dist({"loc": 0.0})
    with pytest.raises(ValueError, match="latent_dim"):
        GaussianLatentSpec(latent_dim=0)


def test_user_code_registers_a_new_prior_rule():
    class HalfNormalSpec(LogNormalSpec):
        pass

    @sample_prior.register(HalfNormalSpec, dict, object)
    def _half_normal(spec, dims, model_config):
        import numpyro

        return numpyro.sample(spec.name, dist.HalfNormal(spec.prior_params[1]))

    tr = sites(lambda: sample_prior(HalfNormalSpec("s", (), (0.0, 2.0)), DIMS, None))
    assert isinstance(tr["s"]["fn"], dist.HalfNormal)
