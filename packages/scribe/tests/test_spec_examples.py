"""The spec's "Usage" examples (003_scribe_builders.md), run as written.

Each example's code is copied verbatim into a test; the result is then traced
once to check the sites the spec describes.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.handlers import replay, seed, trace

N_CELLS, N_GENES = 6, 12
COUNTS = jax.random.poisson(jax.random.key(0), 2.0, (N_CELLS, N_GENES))


def run(fn, **kwargs):
    return trace(seed(fn, 0)).get_trace(N_CELLS, N_GENES, **kwargs)


def test_basic_model():
    from scribe.models.builders import BetaSpec, LogNormalSpec, ModelBuilder
    from scribe.models.components import NegativeBinomialLikelihood

    model = (ModelBuilder()
        .add_param(BetaSpec("p", (), (1.0, 1.0)))
        .add_param(LogNormalSpec("r", ("n_genes",), (0.0, 1.0), is_gene_specific=True))
        .with_likelihood(NegativeBinomialLikelihood())
        .build())  # fmt: skip

    tr = run(model)
    assert tr["p"]["value"].shape == ()
    assert tr["r"]["value"].shape == (N_GENES,)
    assert tr["counts"]["value"].shape == (N_CELLS, N_GENES)
    assert not tr["counts"]["is_observed"]


def test_linked_parameterization():
    from scribe.models.builders import BetaSpec, LogNormalSpec, ModelBuilder
    from scribe.models.components import NegativeBinomialLikelihood

    model = (ModelBuilder()
        .add_param(BetaSpec("p", (), (1.0, 1.0)))
        .add_param(LogNormalSpec("mu", ("n_genes",), (0.0, 1.0), is_gene_specific=True))
        .add_derived("r", lambda p, mu: mu * (1-p) / p, ["p", "mu"])
        .with_likelihood(NegativeBinomialLikelihood())
        .build())  # fmt: skip

    tr = run(model, counts=COUNTS)
    p, mu = float(tr["p"]["value"]), np.asarray(tr["mu"]["value"])
    assert tr["r"]["type"] == "deterministic"
    np.testing.assert_allclose(tr["r"]["value"], mu * (1 - p) / p, rtol=1e-6)
    np.testing.assert_array_equal(tr["counts"]["value"], COUNTS)


def test_building_guides():
    from scribe.models.builders import BetaSpec, GuideBuilder, LogNormalSpec
    from scribe.models.components import LowRankGuide, MeanFieldGuide

    specs = [
        BetaSpec("p", (), (1.0, 1.0), guide_family=MeanFieldGuide()),
        LogNormalSpec("r", ("n_genes",), (0.0, 1.0),
                      is_gene_specific=True,
                      guide_family=LowRankGuide(rank=10)),
    ]  # fmt: skip

    guide = GuideBuilder().from_specs(specs).build()

    tr = run(guide)
    assert {"p_mean", "p_concentration", "r_loc", "r_cov_diag"} <= set(tr)
    assert tr["r_cov_factor"]["value"].shape == (N_GENES, 10)
    assert tr["r"]["value"].shape == (N_GENES,)


def test_mixed_guide_families():
    """As written: ``r`` has no ``is_gene_specific``; ``("n_genes",)`` implies it."""
    from scribe.models.builders import (
        BetaSpec,
        GuideBuilder,
        LogNormalSpec,
        ModelBuilder,
    )
    from scribe.models.components import (
        TOTAL_COUNT,
        AmortizedGuide,
        Amortizer,
        LowRankGuide,
        MeanFieldGuide,
        NBWithVCPLikelihood,
    )

    amortizer = Amortizer(
        sufficient_statistic=TOTAL_COUNT,
        hidden_dims=[64, 32],
        output_params=["alpha", "beta"],
    )

    specs = [
        BetaSpec("p", (), (1.0, 1.0), guide_family=MeanFieldGuide()),
        LogNormalSpec("r", ("n_genes",), (0.0, 1.0), guide_family=LowRankGuide(rank=10)),  # noqa: E501
        BetaSpec("p_capture", ("n_cells",), (1.0, 1.0),
                 is_cell_specific=True,
                 guide_family=AmortizedGuide(amortizer=amortizer)),
    ]  # fmt: skip

    assert specs[1].is_gene_specific
    assert hash(specs[2]) == hash(specs[2].model_copy())  # list args stored as tuples
    guide = GuideBuilder().from_specs(specs).build()
    builder = ModelBuilder()
    for spec in specs:
        builder.add_param(spec)
    model = builder.with_likelihood(NBWithVCPLikelihood()).build()
    guide_tr = run(guide, counts=COUNTS, batch_size=4)
    model_tr = trace(replay(seed(model, 1), guide_tr)).get_trace(
        N_CELLS, N_GENES, counts=COUNTS, batch_size=4
    )
    assert "p_capture_amortizer$params" in guide_tr
    assert guide_tr["p_capture"]["value"].shape == (4,)
    assert guide_tr["r_cov_factor"]["value"].shape == (N_GENES, 10)
    latent = {k for k, v in guide_tr.items() if v["type"] == "sample"}
    assert latent == {"p", "r", "p_capture"}
    assert latent | {"counts"} == {
        k for k, v in model_tr.items() if v["type"] == "sample"
    }
    idx = np.asarray(guide_tr["cells"]["value"])
    np.testing.assert_array_equal(model_tr["counts"]["value"], np.asarray(COUNTS)[idx])


def test_gaussian_latent_spec_snippet():
    from scribe.models.builders import GaussianLatentSpec

    latent_spec = GaussianLatentSpec(latent_dim=10, sample_site="z")
    # In guide: loc, log_scale = encoder(...); var_params = {"loc": loc, "log_scale": log_scale}  # noqa: E501
    # guide_dist = latent_spec.make_guide_dist(var_params); z = sample("z", guide_dist)

    loc, log_scale = jnp.full((N_CELLS, 10), 3.0), jnp.zeros((N_CELLS, 10))
    var_params = {"loc": loc, "log_scale": log_scale}
    guide_dist = latent_spec.make_guide_dist(var_params)
    assert guide_dist.event_shape == (10,) and guide_dist.batch_shape == (N_CELLS,)
    z = guide_dist.sample(jax.random.key(1), (2000,))
    assert float(z.mean()) == pytest.approx(3.0, abs=0.01)
    assert float(z.std()) == pytest.approx(1.0, abs=0.01)
