import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader
from torch_geometric.data import Batch

from kkt_nets.data.datasets import (
    C_FEATS,
    V_FEATS,
    GraphDataset,
    LPDataset,
    lp_to_graph,
    pad_collate,
    pad_collate_graphs,
)
from kkt_nets.data.lp import LP

LP1 = LP(A=[[1.0, 2.0, 3.0]], b=[4.0], c=[5.0, 6.0, 7.0], name="one-by-three")
LP2 = LP(A=[[1.0], [2.0]], b=[3.0, 4.0], c=[5.0], name="two-by-one")


def test_items_are_unpadded_float32():
    ds = LPDataset([LP1, LP2])
    assert (ds.max_m, ds.max_n, ds.input_dim, len(ds)) == (2, 3, 11, 2)
    item = ds[1]
    assert item["A"].dtype == torch.float32
    assert item["A"].tolist() == [[1.0], [2.0]]
    assert item["b"].tolist() == [3.0, 4.0]
    assert item["c"].tolist() == [5.0]


def test_pad_collate_literal_layout():
    ds = LPDataset([LP1, LP2])
    model_input, A, b, c, mask_m, mask_n = pad_collate([ds[0], ds[1]])
    # vec(A) row-major, then b, then c, all of the padded (M, N) = (2, 3) tensors
    assert model_input.tolist() == [
        [1, 2, 3, 0, 0, 0, 4, 0, 5, 6, 7],
        [1, 0, 0, 2, 0, 0, 3, 4, 5, 0, 0],
    ]
    assert A.tolist() == [[[1, 2, 3], [0, 0, 0]], [[1, 0, 0], [2, 0, 0]]]
    assert b.tolist() == [[4, 0], [3, 4]]
    assert c.tolist() == [[5, 6, 7], [5, 0, 0]]
    assert mask_m.dtype == torch.bool and mask_n.dtype == torch.bool
    assert mask_m.tolist() == [[True, False], [True, True]]
    assert mask_n.tolist() == [[True, True, True], [True, False, False]]


def test_pad_collate_pads_to_dataset_size_not_batch_size():
    ds = LPDataset([LP1, LP2], max_m=3, max_n=4)
    model_input, A, *_ = pad_collate([ds[1]])
    assert A.shape == (1, 3, 4) and model_input.shape == (1, 3 * 4 + 3 + 4)
    vec_A = [1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]
    assert model_input[0].tolist() == [*vec_A, 3, 4, 0, 5, 0, 0, 0]
    loader = DataLoader(ds, batch_size=2, collate_fn=pad_collate)
    (batch,) = list(loader)
    assert batch[0].shape == (2, ds.input_dim)


def test_batches_carry_padded_bounds_and_labels_as_attributes():
    boxed = LP(
        A=[[1.0, 2.0, 3.0]],
        b=[4.0],
        c=[5.0, 6.0, 7.0],
        lb=[0, -np.inf, 1],
        ub=[1, 2, np.inf],
    )
    labels = [
        (np.array([1.0, 2.0, 3.0]), np.array([4.0])),
        (np.array([5.0]), np.array([6.0, 7.0])),
    ]
    ds = LPDataset([boxed, LP2], labels=labels)
    batch = pad_collate([ds[0], ds[1]])
    assert len(batch) == 6 and batch.model_input is batch[0] and batch.A is batch[1]
    inf = float("inf")
    assert batch.lb.tolist() == [[0, -inf, 1], [-inf, 0, 0]]
    assert batch.ub.tolist() == [[1, 2, inf], [inf, 0, 0]]
    assert batch.x_star.tolist() == [[1, 2, 3], [5, 0, 0]]
    assert batch.lam_star.tolist() == [[4, 0], [6, 7]]
    moved = batch.to("cpu")
    assert type(moved) is type(batch) and torch.equal(moved.lb, batch.lb)
    graphs = GraphDataset([boxed, LP2], labels=labels)
    graph_batch = pad_collate_graphs([graphs[0], graphs[1]])
    assert len(graph_batch) == 8
    for key in ("lb", "ub", "x_star", "lam_star"):
        assert torch.equal(getattr(graph_batch, key), getattr(batch, key))
    assert "x_star" not in graph_batch.batch_graph
    with pytest.raises(ValueError, match=r"labels of LP 'two-by-one' must be"):
        LPDataset([boxed, LP2], labels=[labels[0], labels[0]])
    with pytest.raises(ValueError, match="labels must hold 2 pairs"):
        GraphDataset([boxed, LP2], labels=labels[:1])


def test_lp_dataset_rejects_bad_input():
    with pytest.raises(ValueError, match="larger than"):
        LPDataset([LP1, LP2], max_m=1)
    with pytest.raises(ValueError, match="at least one"):
        LPDataset([])
    mixed = [LPDataset([LP1])[0], LPDataset([LP1, LP2])[1]]
    with pytest.raises(ValueError, match="padding sizes"):
        pad_collate(mixed)


def random_sparse_lp(rng: np.random.Generator, m: int, n: int) -> LP:
    A = rng.normal(size=(m, n)) * (rng.uniform(size=(m, n)) < 0.5)
    lb = np.where(rng.uniform(size=n) < 0.5, -np.inf, 0.0)
    ub = np.where(rng.uniform(size=n) < 0.5, np.inf, 2.0)
    return LP(A=A, b=rng.normal(size=m), c=rng.normal(size=n), lb=lb, ub=ub)


def test_graph_edges_and_features_match_A():
    rng = np.random.default_rng(0)
    lp = random_sparse_lp(rng, 5, 7)
    g = lp_to_graph(lp)
    assert g.constraint_features.shape == (5, C_FEATS)
    assert g.variable_features.shape == (7, V_FEATS)
    rows, cols = np.nonzero(lp.A)
    assert g.edge_index.tolist() == [rows.tolist(), cols.tolist()]
    np.testing.assert_allclose(g.edge_attr[:, 0].numpy(), lp.A[rows, cols], rtol=1e-6)
    nz = lp.A != 0
    expected_c = np.stack([lp.b, nz.sum(1) / 7, lp.A.sum(1) / 7], axis=1)
    finite_lb, finite_ub = np.isfinite(lp.lb), np.isfinite(lp.ub)
    expected_v = np.stack(
        [
            lp.c,
            nz.sum(0) / 5,
            lp.A.sum(0) / 5,
            np.where(finite_lb, lp.lb, 0.0),
            np.where(finite_ub, lp.ub, 0.0),
            finite_lb,
            finite_ub,
        ],
        axis=1,
    )
    np.testing.assert_allclose(g.constraint_features.numpy(), expected_c, rtol=1e-6)
    np.testing.assert_allclose(g.variable_features.numpy(), expected_v, rtol=1e-6)
    np.testing.assert_allclose(g.A.numpy(), lp.A, rtol=1e-6)
    np.testing.assert_array_equal(g.lb.numpy(), lp.lb)
    np.testing.assert_array_equal(g.ub.numpy(), lp.ub)


def test_pad_collate_graphs_offsets_and_dense_tensors():
    rng = np.random.default_rng(1)
    lps = [random_sparse_lp(rng, m, n) for m, n in [(3, 4), (5, 2), (2, 6)]]
    ds = GraphDataset(lps)
    batch = pad_collate_graphs([ds[i] for i in range(3)])
    batch_graph, A, b, c, mask_m, mask_n, m_sizes, n_sizes = batch
    assert isinstance(batch[0], Batch)
    assert m_sizes.dtype == torch.long and m_sizes.tolist() == [3, 5, 2]
    assert n_sizes.tolist() == [4, 2, 6]
    assert batch_graph.constraint_features.shape == (10, C_FEATS)
    assert batch_graph.variable_features.shape == (12, V_FEATS)
    assert batch_graph.constraint_features_batch.tolist() == [0] * 3 + [1] * 5 + [2] * 2
    assert batch_graph.variable_features_batch.tolist() == [0] * 4 + [1] * 2 + [2] * 6
    # edges of graph k are its own nonzeros shifted by the nodes of graphs < k
    expected_edges, expected_attr = [], []
    c_off = v_off = 0
    for lp in lps:
        rows, cols = np.nonzero(lp.A)
        expected_edges.append(np.stack([rows + c_off, cols + v_off]))
        expected_attr.append(lp.A[rows, cols])
        c_off, v_off = c_off + lp.m, v_off + lp.n
    np.testing.assert_array_equal(
        batch_graph.edge_index.numpy(), np.concatenate(expected_edges, axis=1)
    )
    np.testing.assert_allclose(
        batch_graph.edge_attr[:, 0].numpy(), np.concatenate(expected_attr), rtol=1e-6
    )
    # dense tensors: padded to the batch max (5, 6), equal to the LPDataset padding
    assert A.shape == (3, 5, 6)
    _, A_ref, b_ref, c_ref, mm_ref, mn_ref = pad_collate(
        [LPDataset(lps)[i] for i in range(3)]
    )
    for got, ref in zip(
        (A, b, c, mask_m, mask_n), (A_ref, b_ref, c_ref, mm_ref, mn_ref)
    ):
        assert torch.equal(got, ref)
    # the dense A, b, c stay out of the PyG batch; bounds are per node there
    assert "A" not in batch_graph
    np.testing.assert_array_equal(
        batch_graph.lb.numpy(), np.concatenate([lp.lb for lp in lps])
    )
    ref = pad_collate([LPDataset(lps)[i] for i in range(3)])
    assert torch.equal(batch.lb, ref.lb) and torch.equal(batch.ub, ref.ub)
    assert batch.x_star is None and batch.lam_star is None


def test_graph_loader_and_empty_batch():
    rng = np.random.default_rng(2)
    ds = GraphDataset([random_sparse_lp(rng, 3, 3) for _ in range(4)])
    loader = DataLoader(ds, batch_size=2, collate_fn=pad_collate_graphs)
    batches = list(loader)
    assert len(batches) == 2 and batches[0][0].num_graphs == 2
    with pytest.raises(ValueError, match="at least one"):
        pad_collate_graphs([])


def test_graphs_of_sparse_lps_stay_sparse_for_inference(monkeypatch):
    import scipy.sparse as sp

    from kkt_nets.data import lp as lp_module

    rng = np.random.default_rng(7)
    dense = random_sparse_lp(rng, 6, 5)
    sparse = LP(A=sp.csr_array(dense.A), b=dense.b, c=dense.c, lb=dense.lb, ub=dense.ub)
    g_dense, g_sparse = lp_to_graph(dense), lp_to_graph(sparse, dense=False)
    for key in ("constraint_features", "variable_features", "edge_index", "edge_attr"):
        assert torch.equal(g_dense[key], g_sparse[key]), key
    assert "A" not in g_sparse
    monkeypatch.setattr(lp_module, "DENSE_LIMIT", 10)  # as if A were huge
    with pytest.raises(ValueError, match="a dense A would need"):
        lp_to_graph(sparse)
    batch = pad_collate_graphs([lp_to_graph(sparse, dense=False)] * 2)
    assert batch.A is None and batch.n_sizes.tolist() == [5, 5]
    assert batch.batch_graph.variable_features.shape == (10, V_FEATS)
