import anndata
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.special import gammaln, logsumexp

import scribe
import scribe.data


def labeled(counts):
    n_cells, n_genes = counts.shape
    return anndata.AnnData(
        X=sp.csr_matrix(counts.astype(np.float32)),
        obs=pd.DataFrame(index=[f"c{i}" for i in range(n_cells)]),
        var=pd.DataFrame(index=[f"g{j}" for j in range(n_genes)]),
    )


@pytest.fixture(scope="module")
def two_types():
    """Two cell types with different gene means, variable capture."""
    rng = np.random.default_rng(4)
    n_cells, n_genes = 120, 10
    kind = np.arange(n_cells) % 2
    mean = np.where(kind[:, None] == 0, 2.0, 20.0) * np.linspace(1, 2, n_genes)
    capture = rng.uniform(0.5, 1.0, n_cells)[:, None]
    counts = rng.negative_binomial(3.0, 3.0 / (3.0 + mean * capture))
    return labeled(counts), kind


@pytest.fixture(scope="module")
def mixture(two_types):
    adata, _ = two_types
    return scribe.fit(
        adata, "nbvcp", n_components=2, n_steps=600, batch_size=40, progress=False
    )


def test_results_carry_the_names(mixture, two_types):
    adata, _ = two_types
    assert list(mixture.cell_names[:2]) == ["c0", "c1"]
    assert list(mixture.gene_names) == list(adata.var_names)


def test_save_load_gives_identical_posterior_draws(mixture, two_types, tmp_path):
    adata, _ = two_types
    path = mixture.save(tmp_path / "fit")
    assert sorted(p.name for p in path.iterdir()) == ["arrays.npz", "scribe.json"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    loaded = scribe.load(path, data=adata)
    assert loaded.config == mixture.config
    np.testing.assert_array_equal(loaded.loss_history, mixture.loss_history)
    a = mixture.posterior_samples(20, seed=7)
    b = loaded.posterior_samples(20, seed=7)
    assert a.keys() == b.keys() and "p_capture" in a
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    np.testing.assert_array_equal(
        mixture.assignment_probabilities(10, seed=1),
        loaded.assignment_probabilities(10, seed=1),
    )
    with pytest.raises(FileExistsError, match="exists"):
        mixture.save(path)


def test_load_refuses_other_data_and_other_formats(mixture, two_types, tmp_path):
    adata, _ = two_types
    path = mixture.save(tmp_path / "fit")
    renamed = adata.copy()
    renamed.var_names = [f"x{j}" for j in range(adata.n_vars)]
    with pytest.raises(ValueError, match=r"gene names differ .* position 0"):
        scribe.load(path, data=renamed)
    with pytest.raises(ValueError, match="shape"):
        scribe.load(path, data=adata[:10])
    with pytest.raises(FileNotFoundError, match="no scribe results"):
        scribe.load(tmp_path)
    meta = path / "scribe.json"
    meta.write_text(meta.read_text().replace('"version": 1', '"version": 99'))
    with pytest.raises(ValueError, match="version"):
        scribe.load(path)


def test_assignment_probabilities_match_exact_enumeration(mixture, two_types):
    """Per draw, softmax of log w_k + sum_g log NB; averaged over draws."""
    adata, kind = two_types
    draws = mixture.posterior_samples(
        30, seed=3, return_sites=["p", "r", "mixing_weights", "p_capture"]
    )
    x = adata.X.toarray()
    probs = []
    for s in range(30):
        r, w = draws["r"][s], draws["mixing_weights"][s]
        p = np.reshape(draws["p"][s], (1, -1, 1))  # shared or one per component
        nu = draws["p_capture"][s][:, None, None]
        p_hat = p * nu / (1 - p * (1 - nu))  # [cells, 1 or K, 1]
        log_nb = (
            gammaln(x[:, None, :] + r[None])
            - gammaln(r[None])
            - gammaln(x[:, None, :] + 1)
            + r[None] * np.log1p(-p_hat)
            + x[:, None, :] * np.log(p_hat)
        ).sum(-1) + np.log(w)
        probs.append(np.exp(log_nb - logsumexp(log_nb, axis=1, keepdims=True)))
    expected = np.mean(probs, axis=0)
    got = mixture.assignment_probabilities(30, seed=3)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    # the two simulated types are told apart
    labels = got.argmax(1)
    assert max(np.mean(labels == kind), np.mean(labels != kind)) > 0.95


def test_to_anndata_writes_the_documented_keys(mixture, two_types):
    adata, _ = two_types
    out = mixture.to_anndata(adata.copy(), n_samples=20)
    assert out.varm["scribe_r_mean"].shape == (10, 2)
    assert out.varm["scribe_r_sd"].shape == (10, 2)
    assert out.obs["scribe_p_capture_mean"].shape == (120,)
    assert out.obs["scribe_p_capture_sd"].between(0, 1).all()
    np.testing.assert_allclose(out.obsm["scribe_assignment_probs"].sum(1), 1, 1e-5)
    assert out.obs["scribe_component"].dtype == "category"
    uns = out.uns["scribe"]
    assert uns["loss_history"].shape == (600,)
    assert uns["mixing_weights_mean"].shape == (2,)
    assert '"n_components":2' in uns["config"]
    # means are the posterior means of the draws of the same seed
    draws = mixture.posterior_samples(20, return_sites=["r"])
    np.testing.assert_allclose(out.varm["scribe_r_mean"], draws["r"].mean(0).T)
    with pytest.raises(ValueError, match="adata's gene names differ"):
        renamed = adata.copy()
        renamed.var_names = [f"x{j}" for j in range(adata.n_vars)]
        mixture.to_anndata(renamed)
    new = mixture.to_anndata(n_samples=5)  # a new AnnData of the attached counts
    assert list(new.obs_names[:1]) == ["c0"] and sp.issparse(new.X)


def test_draws_of_a_cell_subset_equal_those_of_all_cells(mixture):
    every = mixture.posterior_samples(8, seed=2, return_sites=["p_capture"])
    assert every["p_capture"].shape == (8, 120)
    subset = mixture.posterior_samples(8, seed=2, return_sites=["p_capture"], cells=[3])
    assert subset["p_capture"].shape == (8, 1)
    replicates = mixture.posterior_predictive(4, cells=np.arange(5))
    assert replicates.shape == (4, 5, 10)
    assert np.all(replicates == np.round(replicates))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda r: r.posterior_predictive(n_samples=10**8), MemoryError, "n_samples"),
        (lambda r: r.posterior_samples(n_samples=10**12), MemoryError, "n_samples"),
        (lambda r: r.posterior_samples(n_samples=0), ValueError, "n_samples"),
        (lambda r: r.posterior_samples(seed=None), ValueError, "seed"),
        (lambda r: r.posterior_samples(seed=2**70), ValueError, "seed"),
        (lambda r: r.posterior_samples(return_sites=["nope"]), ValueError, "nope"),
        (lambda r: r.posterior_samples(cells=[500]), ValueError, "cells"),
        (lambda r: r.latent_representation(), ValueError, "vae"),
    ],
)
def test_requests_that_cannot_be_met_are_refused(mixture, call, error, match):
    with pytest.raises(error, match=match):
        call(mixture)
