import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
from scipy import stats

from scribe.models.components import (
    capture_adjusted_p,
    element_log_prob,
    log_likelihood,
    nb_log_prob,
    zinb_log_prob,
)

MODELS = ["nbdm", "zinb", "nbvcp", "zinbvcp"]


def params_of(golden, model):
    prefix = f"params_{model}__"
    return {k[len(prefix) :]: golden[k] for k in golden if k.startswith(prefix)}


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("by", ["cell", "gene"])
def test_golden_single_component(golden, model, by):
    got = log_likelihood(jnp.asarray(golden["counts"]), params_of(golden, model), by)
    np.testing.assert_allclose(got, golden[f"{model}__rb-{by}"], rtol=0, atol=1e-4)


@pytest.mark.parametrize("model", MODELS)
def test_golden_mixtures(golden, model):
    counts = jnp.asarray(golden["counts"])
    params = params_of(golden, f"{model}_mix")
    keys = [k for k in golden if k.startswith(f"{model}_mix__rb-")]
    assert len(keys) == 6
    for key in keys:
        _, by, split, weighting = key.split("__")
        weights = golden["weights_gene"] if weighting == "w-add" else None
        got = log_likelihood(counts, params, by[3:], split == "sc-1", weights)
        np.testing.assert_allclose(got, golden[key], rtol=0, atol=1e-4, err_msg=key)


def test_elementwise_matches_scipy_in_float64_at_large_counts():
    k = np.array([0.0, 1.0, 7.0, 250.0, 10_000.0, 123_456.0])
    r = np.array([0.05, 0.7, 3.0, 40.0, 2.5, 900.0])
    p = np.array([0.3, 0.9, 0.5, 0.99, 0.999, 0.9])
    gate = np.array([0.1, 0.5, 0.05, 0.3, 0.2, 0.6])
    exact = stats.nbinom.logpmf(k, r, 1.0 - p)  # scipy's p is numpyro's 1 - p
    as32 = [jnp.asarray(x, jnp.float32) for x in (k, r, p, gate)]
    np.testing.assert_allclose(nb_log_prob(*as32[:3]), exact, rtol=2e-6, atol=2e-4)
    zero_inflated = np.where(
        k == 0,
        np.logaddexp(np.log(gate), np.log1p(-gate) + exact),
        np.log1p(-gate) + exact,
    )
    np.testing.assert_allclose(
        zinb_log_prob(*as32), zero_inflated, rtol=2e-6, atol=2e-4
    )
    # numpyro's own distribution agrees where float32 allows
    nb = dist.NegativeBinomialProbs(as32[1], as32[2])
    np.testing.assert_allclose(nb_log_prob(*as32[:3]), nb.log_prob(as32[0]), rtol=1e-3)


def test_capture_adjusted_p_is_the_thinned_negative_binomial():
    # Binomial thinning of NB(r, p) with capture nu is NB(r, p_hat): compare the
    # probability of zero, sum_k NB(k) (1 - nu)^k, with NB_hat(0).
    r, p, nu = 2.5, 0.6, 0.3
    k = jnp.arange(400.0)
    p0 = jnp.sum(jnp.exp(nb_log_prob(k, r, p)) * (1 - nu) ** k)
    p_hat = capture_adjusted_p(p, nu)
    assert float(p0) == pytest.approx(float((1 - p_hat) ** r), rel=1e-5)


def test_mixture_layout_and_errors():
    counts = jnp.ones((4, 3))
    params = {
        "p": jnp.array([0.2, 0.5]),
        "r": jnp.ones((2, 3)),
        "mixing_weights": jnp.array([0.25, 0.75]),
    }
    assert element_log_prob(counts, params).shape == (2, 4, 3)
    split = log_likelihood(counts, params, "cell", split_components=True)
    per_component = [
        np.log(w) + np.asarray(nb_log_prob(counts, 1.0, pk)).sum(-1)
        for w, pk in ((0.25, 0.2), (0.75, 0.5))
    ]
    np.testing.assert_allclose(split, np.stack(per_component, -1), rtol=1e-6)
    with pytest.raises(ValueError, match="return_by"):
        log_likelihood(counts, params, "batch")
    with pytest.raises(ValueError, match="mixture"):
        log_likelihood(counts, {"p": 0.5, "r": jnp.ones(3)}, split_components=True)
    with pytest.raises(ValueError, match="per-cell"):
        log_likelihood(counts, params, "gene", weights=jnp.ones(3))
