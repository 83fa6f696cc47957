import numpy as np
import pytest
import scipy.sparse as sp

from scribe.datasets import simulate_atlas, simulate_nb_counts


@pytest.fixture(scope="module")
def atlas():
    return simulate_atlas(3000, 400, density=0.1, n_types=4, seed=3)


def test_shape_dtype_and_format(atlas):
    assert sp.issparse(atlas) and atlas.format == "csr"
    assert atlas.shape == (3000, 400)
    assert atlas.dtype == np.float32
    assert atlas.indices.dtype == np.int32
    atlas.check_format(full_check=True)
    values = atlas.data
    assert np.all(values > 0) and np.all(values == np.round(values))
    ints = simulate_atlas(50, 20, seed=0, dtype="int32")
    assert ints.dtype == np.int32
    np.testing.assert_array_equal(
        ints.toarray(), simulate_atlas(50, 20, seed=0).toarray().astype(np.int32)
    )


@pytest.mark.parametrize("density", [0.02, 0.1, 0.3])
def test_density_matches_the_target(density):
    # the scale is solved from the exact expected fraction of non-zeros, so the
    # realized fraction is within sampling noise of the target (plus cell-type
    # proportions being drawn per cell)
    counts = simulate_atlas(4000, 300, density=density, seed=1)
    assert counts.nnz / (4000 * 300) == pytest.approx(density, rel=0.08)


def test_counts_are_overdispersed_and_typed(atlas):
    dense = atlas.toarray().astype(np.float64)
    mean, var = dense.mean(0), dense.var(0)
    expressed = mean > 1.0
    assert expressed.sum() > 10
    # negative binomial (with a library factor and cell types): var > mean
    assert np.all(var[expressed] > 1.2 * mean[expressed])
    # per-cell totals vary (library factor sd 0.4 on the log scale, plus types)
    totals = np.log(dense.sum(1) + 1.0)
    assert 0.25 < totals.std() < 1.0


def test_chunked_generation_keeps_cells_consistent():
    # rows are written in chunks into preallocated arrays: the CSR structure
    # must not depend on where chunks end (same stream when chunk size fixed)
    a = simulate_atlas(103, 17, density=0.3, seed=5, chunk_cells=10)
    b = simulate_atlas(103, 17, density=0.3, seed=5, chunk_cells=10)
    a.check_format(full_check=True)
    assert np.diff(a.indptr).sum() == a.nnz
    np.testing.assert_array_equal(a.toarray(), b.toarray())


def test_reproducible_by_seed():
    a = simulate_atlas(500, 100, seed=7)
    b = simulate_atlas(500, 100, seed=7)
    c = simulate_atlas(500, 100, seed=8)
    assert (a != b).nnz == 0
    assert (a != c).nnz > 0


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"n_cells": 0}, ValueError, "n_cells"),
        ({"n_cells": 10.5}, TypeError, "n_cells"),
        ({"n_genes": -1}, ValueError, "n_genes"),
        ({"n_genes": True}, TypeError, "n_genes"),
        ({"density": 0.0}, ValueError, "density"),
        ({"density": 0.95}, ValueError, "density"),
        ({"density": "0.1"}, TypeError, "density"),
        ({"n_types": 0}, ValueError, "n_types"),
        ({"seed": -1}, ValueError, "seed"),
        ({"dtype": "float64"}, ValueError, "dtype"),
        ({"library_sd": -0.1}, ValueError, "library_sd"),
        ({"chunk_cells": 0}, ValueError, "chunk_cells"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, error, name):
    args = {"n_cells": 10, "n_genes": 5} | kwargs
    with pytest.raises(error, match=name):
        simulate_atlas(**args)


def test_simulate_nb_counts_is_seeded_with_numpyros_mean():
    counts, r = simulate_nb_counts(4000, 30, p=0.3, seed=2)
    again, _ = simulate_nb_counts(4000, 30, p=0.3, seed=2)
    assert counts.shape == (4000, 30) and r.shape == (30,)
    assert np.issubdtype(counts.dtype, np.integer) and (counts >= 0).all()
    np.testing.assert_array_equal(counts, again)
    # numpyro's NegativeBinomialProbs(r, p): mean r p / (1 - p)
    np.testing.assert_allclose(counts.mean(0), r * 0.3 / 0.7, rtol=0.15, atol=0.02)
