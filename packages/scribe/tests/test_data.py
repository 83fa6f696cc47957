import anndata
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import scribe.data
from scribe.data import as_count_data, densify_rows, to_device


@pytest.fixture(scope="module")
def counts():
    rng = np.random.default_rng(0)
    dense = rng.negative_binomial(1, 0.4, size=(40, 25))
    return dense * (rng.random(dense.shape) < 0.3)


def named(matrix):
    n_cells, n_genes = matrix.shape
    return anndata.AnnData(
        X=matrix,
        obs=pd.DataFrame(index=[f"cell{i}" for i in range(n_cells)]),
        var=pd.DataFrame(index=[f"gene{j}" for j in range(n_genes)]),
    )


@pytest.mark.parametrize("form", ["dense", "csr", "csc", "coo", "anndata", "layer"])
def test_every_input_form_gives_the_same_counts(counts, form):
    matrix = {
        "dense": counts,
        "csr": sp.csr_matrix(counts),
        "csc": sp.csc_matrix(counts),
        "coo": sp.coo_matrix(counts),
    }.get(form, sp.csr_matrix(counts.astype(np.float32)))
    layer = None
    if form == "anndata":
        matrix = named(matrix)
    elif form == "layer":
        matrix = named(np.zeros(counts.shape, np.float32))
        matrix.layers["counts"] = sp.csr_matrix(counts)
        layer = "counts"
    data = as_count_data(matrix, layer=layer)
    assert data.shape == counts.shape
    assert data.is_sparse == (form != "dense")
    assert data.matrix.dtype == np.float32
    np.testing.assert_array_equal(data.rows(np.arange(40)), counts)
    np.testing.assert_array_equal(data.library_sizes(), counts.sum(1))
    if form in ("anndata", "layer"):
        assert data.cell_names[3] == "cell3" and data.gene_names[-1] == "gene24"
    else:
        assert data.cell_names[3] == "3" and data.gene_names[-1] == "24"


def test_densified_csr_batches_equal_dense_rows_bit_for_bit(counts):
    index = jnp.array([5, 0, 39, 5, 17], jnp.int32)
    dense = densify_rows(to_device(as_count_data(counts), dense=False), index)
    csr = densify_rows(
        to_device(as_count_data(sp.csr_matrix(counts)), dense=False), index
    )
    np.testing.assert_array_equal(np.asarray(csr), counts[np.asarray(index)])
    np.testing.assert_array_equal(np.asarray(csr), np.asarray(dense))


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda x: x - 1.0, r"holds \d+ negative count\(s\), at \(cell 'cell0'"),
        (lambda x: x + 0.5, r"holds 1000 non-integer count\(s\)"),
        (lambda x: np.where(x > 3, np.nan, x), r"non-finite \(NaN or inf\)"),
        (lambda x: x * 2.0**25, r"count\(s\) above 2\*\*24 = 16777216"),
    ],
)
def test_bad_counts_say_how_many_and_where(counts, sparse, change, match):
    bad = change(counts.astype(np.float64))
    if sparse:
        bad = sp.csr_matrix(bad)
    with pytest.raises(ValueError, match=match):
        as_count_data(named(bad))


def test_the_error_points_at_the_offending_entry():
    x = np.zeros((3, 4))
    x[2, 1] = -7
    with pytest.raises(
        ValueError, match=r"1 negative count\(s\), at \(cell '2', gene '1'\)"
    ):
        as_count_data(sp.csr_matrix(x))


@pytest.mark.parametrize(
    ("data", "kwargs", "error", "match"),
    [
        ([[1, 2]], {}, TypeError, "numpy array or a scipy sparse matrix, got list"),
        (np.ones(4), {}, ValueError, "2-D"),
        (np.ones((0, 3)), {}, ValueError, "non-empty"),
        (np.array([["a"]]), {}, ValueError, "integer or float counts"),
        (np.ones((2, 2)), {"layer": "counts"}, ValueError, "needs an AnnData"),
        (named(np.ones((2, 2))), {"layer": "raw"}, ValueError, "layers: \\[\\]"),
        (named(np.ones((2, 2))), {"layer": 3}, TypeError, "layer must be a str"),
    ],
)
def test_bad_inputs_name_the_argument(data, kwargs, error, match):
    with pytest.raises(error, match=match):
        as_count_data(data, **kwargs)


def test_full_batch_densifying_refuses_what_cannot_fit(counts, monkeypatch):
    data = as_count_data(sp.csr_matrix(counts))
    monkeypatch.setattr(scribe.data, "available_memory", lambda: 1000)
    with pytest.raises(MemoryError, match=r"needs 0\.00 GiB .*batch_size"):
        data.dense()
