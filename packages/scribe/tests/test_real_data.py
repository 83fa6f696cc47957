import numpy as np
import pytest

import scribe
from scribe.datasets import load_celltypist_sample


@pytest.fixture(scope="module")
def umi():
    try:
        counts, _ = load_celltypist_sample(n_genes=500)
    except FileNotFoundError as error:
        pytest.skip(str(error))
    return counts


def test_sample_matrix_is_a_umi_matrix(umi):
    assert umi.shape == (559, 500)
    assert np.all(umi == np.round(umi)) and umi.min() == 0
    totals = umi.sum(axis=0)
    assert np.all(np.diff(totals) <= 0)  # genes ordered by total count


@pytest.mark.slow
def test_variable_capture_fits_better_and_reproduces_the_spread_of_totals(umi):
    observed = np.log(umi.sum(axis=1))
    fits = {
        model: scribe.fit(umi, model=model, n_steps=2000, progress=False, seed=0)
        for model in ("nbdm", "nbvcp")
    }
    # a better (lower) negative ELBO for the capture model
    assert fits["nbvcp"].final_loss() < 0.95 * fits["nbdm"].final_loss()
    spread = {}
    for model, res in fits.items():
        replicates = np.log(res.posterior_predictive(n_samples=20).sum(-1) + 1.0)
        spread[model] = replicates.std(axis=1).mean()
        if model == "nbvcp":
            np.testing.assert_allclose(
                np.percentile(replicates, [10, 50, 90]),
                np.percentile(observed, [10, 50, 90]),
                atol=0.25,
            )
    assert spread["nbvcp"] == pytest.approx(observed.std(), rel=0.15)
    # one shared p cannot: the plain NB's totals are far too concentrated
    assert spread["nbdm"] < 0.3 * observed.std()
