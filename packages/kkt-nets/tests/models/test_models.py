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
    return GNNPolicy(embedding_size=d, gnn_layers=layers)


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
    softplus = torch.nn.functional.softplus
    # free variables: x is the head's score; lambda goes through a softplus
    torch.testing.assert_close(
        y, torch.cat([net.head_x(h), softplus(net.head_lam(h))], 1)
    )
    z = net.jepa_embed(x)
    assert z.shape == (5, 32)
    torch.testing.assert_close(z.norm(dim=-1), torch.ones(5))
    torch.testing.assert_close(
        z, torch.nn.functional.normalize(net.jepa_proj(net.net(x)), dim=-1)
    )
    # the trunk sees standardized inputs once the normalizer is fitted
    net.input_norm.fit(x * 3 + 1)
    torch.testing.assert_close(
        net.encode_trunk(x),
        net.net((x - (x * 3 + 1).mean(0)) / (3 * x.std(0, unbiased=False))),
    )
    # bounds given: x inside them
    lb = torch.tensor([0.0, -torch.inf, 1.0]).expand(5, 3)
    ub = torch.tensor([1.0, 2.0, torch.inf]).expand(5, 3)
    bounded = net(x * 100, lb, ub)[:, :3]
    assert (bounded >= lb).all() and (bounded <= ub).all()
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


def test_gnn_predictions_respect_the_bounds_of_each_variable():
    rng = np.random.default_rng(1)
    lp = random_lp(rng, 5, 6)
    lp = LP(
        A=lp.A,
        b=lp.b,
        c=lp.c,
        lb=[0, 0, -np.inf, -1, -np.inf, 2],
        ub=[1, np.inf, 3, -1, np.inf, 2.5],
    )
    g = lp_to_graph(lp)
    net = gnn(seed=4)
    x, lam = net(*graph_inputs(g), lb=g.lb, ub=g.ub)
    x = x.detach().numpy()
    assert np.all(x >= lp.lb - 1e-6) and np.all(x <= lp.ub + 1e-6)
    assert x[3] == -1.0  # lb == ub
    assert (lam >= 0).all()


def test_bounded_primal_literal_values_and_gradients():
    from kkt_nets.models.output_layer import bounded_primal

    inf = torch.inf
    z = torch.tensor([0.0, 0.0, 0.0, 0.0, 2.0], requires_grad=True)
    lb = torch.tensor([1.0, 1.0, -inf, -inf, -3.0])
    ub = torch.tensor([3.0, inf, 5.0, inf, -3.0])
    x = bounded_primal(z, lb, ub)
    log2 = float(np.log(2.0))
    torch.testing.assert_close(
        x, torch.tensor([2.0, 1.0 + log2, 5.0 - log2, 0.0, -3.0])
    )
    x.sum().backward()
    torch.testing.assert_close(z.grad, torch.tensor([0.5, 0.5, 0.5, 1.0, 0.0]))
    assert torch.equal(bounded_primal(z, None, None), z)


def test_feature_normalizer_fit_and_errors():
    from kkt_nets.models.output_layer import FeatureNormalizer

    norm = FeatureNormalizer(2)
    data = torch.tensor([[1.0, 5.0], [3.0, 5.0]])
    assert torch.equal(norm(data), data)  # identity until fitted
    norm.fit(data)
    torch.testing.assert_close(norm(data), torch.tensor([[-1.0, 0.0], [1.0, 0.0]]))
    assert set(norm.state_dict()) == {"mean", "std"}
    with pytest.raises(ValueError, match=r"\[K, 2\]"):
        norm.fit(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="finite"):
        norm.fit(torch.tensor([[float("nan"), 1.0]]))


def test_gnn_bad_args():
    with pytest.raises(ValueError, match="gnn_layers"):
        GNNPolicy(embedding_size=8, gnn_layers=0)
    with pytest.raises(ValueError, match="embedding_size"):
        GNNPolicy(embedding_size=2.5, gnn_layers=1)


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
