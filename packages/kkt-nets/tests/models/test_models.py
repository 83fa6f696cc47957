from argparse import Namespace

import numpy as np
import pytest
import torch

from kkt_nets.data.datasets import (
    GraphDataset,
    LPDataset,
    lp_to_graph,
    pad_collate,
    pad_collate_graphs,
)
from kkt_nets.data.lp import LP
from kkt_nets.models.models import GNNPolicy, KKTNetMLP, nodes_to_padded

torch.set_num_threads(1)


def random_lp(rng: np.random.Generator, m: int, n: int) -> LP:
    A = rng.normal(size=(m, n)) * (rng.uniform(size=(m, n)) < 0.6)
    return LP(A=A, b=rng.normal(size=m), c=rng.normal(size=n))


def graph_inputs(g):
    return g.constraint_features, g.edge_index, g.edge_attr, g.variable_features


def gnn(seed: int = 0, d: int = 16, layers: int = 2) -> GNNPolicy:
    torch.manual_seed(seed)
    return GNNPolicy(Namespace(embedding_size=d, gnn_layers=layers))


def test_mlp_shapes_and_layout():
    torch.manual_seed(0)
    net = KKTNetMLP(m=4, n=3, hidden=32, num_layers=3)
    linears = [layer for layer in net.net if isinstance(layer, torch.nn.Linear)]
    assert [(lin.in_features, lin.out_features) for lin in linears] == [
        (4 * 3 + 4 + 3, 32),
        (32, 32),
        (32, 32),
    ]
    assert (net.head_x.out_features, net.head_lam.out_features) == (3, 4)
    x = torch.randn(5, 19)
    y = net(x)
    assert y.shape == (5, 3 + 4)
    h = net.encode_trunk(x)
    torch.testing.assert_close(y, torch.cat([net.head_x(h), net.head_lam(h)], 1))
    z = net.jepa_embed(x)
    assert z.shape == (5, 32)
    torch.testing.assert_close(z.norm(dim=-1), torch.ones(5))
    torch.testing.assert_close(
        z, torch.nn.functional.normalize(net.jepa_proj(net.net(x)), dim=-1)
    )
    with pytest.raises(ValueError, match="num_layers"):
        KKTNetMLP(m=4, n=3, num_layers=0)


def test_mlp_forward_independent_of_jepa_heads():
    torch.manual_seed(0)
    net = KKTNetMLP(m=3, n=2, hidden=16)
    x = torch.randn(4, 3 * 2 + 3 + 2)
    before = net(x)
    before.sum().backward()
    for module in (net.jepa_proj, net.jepa_pred):
        for p in module.parameters():
            assert p.grad is None
    with torch.no_grad():
        for module in (net.jepa_proj, net.jepa_pred):
            for p in module.parameters():
                p.add_(torch.randn_like(p))
    assert torch.equal(net(x), before)


def test_gnn_shapes_and_nonnegative_lambda():
    rng = np.random.default_rng(0)
    lps = [random_lp(rng, m, n) for m, n in [(4, 3), (2, 5)]]
    ds = GraphDataset(lps)
    batch_graph, *_, m_sizes, n_sizes = pad_collate_graphs([ds[0], ds[1]])
    net = gnn()
    x_nodes, lam_nodes = net(*graph_inputs(batch_graph))
    assert x_nodes.shape == (8,) and lam_nodes.shape == (6,)
    c_emb, v_emb = net.encode(*graph_inputs(batch_graph))
    assert c_emb.shape == (6, 16) and v_emb.shape == (8, 16)
    zc, zv = net.jepa_embed_nodes(*graph_inputs(batch_graph))
    torch.testing.assert_close(zc.norm(dim=-1), torch.ones(6))
    torch.testing.assert_close(zv.norm(dim=-1), torch.ones(8))
    assert nodes_to_padded(x_nodes, lam_nodes, m_sizes, n_sizes).shape == (2, 5 + 4)
    # non-negative duals even for huge features
    big = [t * 1e3 if t.is_floating_point() else t for t in graph_inputs(batch_graph)]
    assert (net(*big)[1] >= 0).all()
    assert (lam_nodes >= 0).all()


def test_gnn_bad_args():
    with pytest.raises(ValueError, match="gnn_layers"):
        GNNPolicy(Namespace(embedding_size=8, gnn_layers=0))
    with pytest.raises(ValueError, match="embedding_size"):
        GNNPolicy(Namespace(embedding_size=2.5, gnn_layers=1))


def test_gnn_permutation_equivariance():
    rng = np.random.default_rng(3)
    lp = random_lp(rng, 6, 5)
    rows, cols = rng.permutation(6), rng.permutation(5)
    permuted = LP(A=lp.A[rows][:, cols], b=lp.b[rows], c=lp.c[cols])
    net = gnn(seed=1, layers=3)
    x, lam = net(*graph_inputs(lp_to_graph(lp)))
    x_p, lam_p = net(*graph_inputs(lp_to_graph(permuted)))
    torch.testing.assert_close(x_p, x[cols], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(lam_p, lam[rows], rtol=1e-5, atol=1e-5)
    zc, zv = net.jepa_embed_nodes(*graph_inputs(lp_to_graph(lp)))
    zc_p, zv_p = net.jepa_embed_nodes(*graph_inputs(lp_to_graph(permuted)))
    torch.testing.assert_close(zc_p, zc[rows], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(zv_p, zv[cols], rtol=1e-5, atol=1e-5)
    # and the outputs do depend on the instance (not a constant map)
    assert x.std() > 1e-4 and lam.std() > 1e-4


def test_gnn_batched_equals_single():
    rng = np.random.default_rng(4)
    lps = [random_lp(rng, m, n) for m, n in [(3, 4), (5, 2)]]
    ds = GraphDataset(lps)
    batch_graph, *_ = pad_collate_graphs([ds[0], ds[1]])
    net = gnn(seed=2)
    x_b, lam_b = net(*graph_inputs(batch_graph))
    x_0, lam_0 = net(*graph_inputs(ds[0]))
    x_1, lam_1 = net(*graph_inputs(ds[1]))
    torch.testing.assert_close(x_b, torch.cat([x_0, x_1]), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(lam_b, torch.cat([lam_0, lam_1]), rtol=1e-5, atol=1e-6)


def test_gnn_forward_independent_of_jepa_heads():
    rng = np.random.default_rng(5)
    g = lp_to_graph(random_lp(rng, 4, 4))
    net = gnn(seed=3)
    before = net(*graph_inputs(g))
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.startswith("jepa_"):
                p.add_(torch.randn_like(p))
    after = net(*graph_inputs(g))
    assert torch.equal(before[0], after[0]) and torch.equal(before[1], after[1])


def test_nodes_to_padded_round_trip():
    m_sizes = torch.tensor([2, 4, 1])
    n_sizes = torch.tensor([3, 1, 2])
    x_nodes = torch.arange(1.0, 7.0, requires_grad=True)
    lam_nodes = torch.arange(10.0, 17.0)
    y = nodes_to_padded(x_nodes, lam_nodes, m_sizes, n_sizes)
    assert y.tolist() == [
        [1, 2, 3, 10, 11, 0, 0],
        [4, 0, 0, 12, 13, 14, 15],
        [5, 6, 0, 16, 0, 0, 0],
    ]
    # round trip through the collate masks: padded -> nodes gives the nodes back
    ds = LPDataset(
        [
            LP(A=np.ones((m, n)), b=np.ones(m), c=np.ones(n))
            for m, n in [(2, 3), (4, 1), (1, 2)]
        ]
    )
    *_, mask_m, mask_n = pad_collate([ds[i] for i in range(3)])
    assert torch.equal(y[:, :3][mask_n], x_nodes)
    assert torch.equal(y[:, 3:][mask_m], lam_nodes)
    y[:, :3].sum().backward()
    assert torch.equal(x_nodes.grad, torch.ones(6))
    with pytest.raises(ValueError, match="x_nodes"):
        nodes_to_padded(x_nodes[:5], lam_nodes, m_sizes, n_sizes)
