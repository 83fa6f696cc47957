from copy import deepcopy

import numpy as np
import pytest
import torch

from kkt_nets.data.datasets import (
    GraphDataset,
    LPDataset,
    pad_collate,
    pad_collate_graphs,
)
from kkt_nets.data.lp import LP
from kkt_nets.models.jepa_utils import (
    cosine_pred_loss,
    ema_update,
    jepa_loss_gnn,
    jepa_loss_mlp,
    make_gnn_views,
    make_mlp_views,
)
from kkt_nets.models.models import GNNPolicy, KKTNetMLP

torch.set_num_threads(1)


def random_lp(rng: np.random.Generator, m: int, n: int) -> LP:
    A = rng.normal(size=(m, n)) * (rng.uniform(size=(m, n)) < 0.6)
    return LP(A=A, b=rng.normal(size=m), c=rng.normal(size=n))


@pytest.fixture
def mlp_batch():
    rng = np.random.default_rng(0)
    ds = LPDataset([random_lp(rng, m, n) for m, n in [(3, 4), (5, 2), (4, 4)]])
    return pad_collate([ds[i] for i in range(len(ds))])


@pytest.fixture
def graph_batch():
    rng = np.random.default_rng(1)
    ds = GraphDataset([random_lp(rng, m, n) for m, n in [(7, 5), (4, 9), (6, 6)]])
    return pad_collate_graphs([ds[i] for i in range(len(ds))])


def test_ema_update_matches_hand_formula():
    torch.manual_seed(0)
    online = KKTNetMLP(2, 2, hidden=8)
    target = KKTNetMLP(2, 2, hidden=8)
    old_t = [p.detach().clone() for p in target.parameters()]
    ema_update(target, online, m=0.9)
    for p_t, p_0, p_o in zip(target.parameters(), old_t, online.parameters()):
        torch.testing.assert_close(p_t, 0.9 * p_0 + 0.1 * p_o)
    ema_update(target, online, m=0.0)
    for p_t, p_o in zip(target.parameters(), online.parameters()):
        assert torch.equal(p_t, p_o)


def test_cosine_pred_loss_values():
    gen = torch.Generator().manual_seed(0)
    z = torch.nn.functional.normalize(torch.randn(6, 5, generator=gen), dim=-1)
    assert float(cosine_pred_loss(z, z)) == pytest.approx(0.0, abs=1e-6)
    assert float(cosine_pred_loss(3.0 * z, z)) == pytest.approx(0.0, abs=1e-6)
    assert float(cosine_pred_loss(-z, z)) == pytest.approx(4.0, abs=1e-6)
    p = torch.randn(6, 5, generator=gen)
    cos = (p * z).sum(-1) / p.norm(dim=-1)
    assert float(cosine_pred_loss(p, z)) == pytest.approx(float((2 - 2 * cos).mean()))


def test_make_mlp_views_masks_exactly_k_entries(mlp_batch):
    model_input, A, b, c, *_ = mlp_batch
    D_in = model_input.shape[1]
    gen = torch.Generator().manual_seed(0)
    x_ctx, x_tgt = make_mlp_views(model_input, A, b, c, 0.5, generator=gen)
    assert x_tgt is model_input
    changed = x_ctx != model_input
    assert changed.sum(dim=1).tolist() == [int(0.5 * D_in)] * 3
    assert x_ctx[changed].abs().max() < 0.1  # zero plus N(0, 0.01^2) noise
    assert torch.equal(x_ctx[~changed], model_input[~changed])
    again = make_mlp_views(
        model_input, A, b, c, 0.5, generator=torch.Generator().manual_seed(0)
    )[0]
    assert torch.equal(again, x_ctx)
    same = make_mlp_views(model_input, A, b, c, 0.5 / D_in)
    assert same[0] is model_input and same[1] is model_input
    with pytest.raises(ValueError, match="mask_ratio"):
        make_mlp_views(model_input, A, b, c, 1.5)


def test_make_mlp_views_masks_uniform_subsets():
    # every position is masked with probability k / D_in, as with randperm
    B, M, N = 4000, 2, 3
    D_in = M * N + M + N
    flat = torch.ones(B, D_in)
    gen = torch.Generator().manual_seed(1)
    x_ctx, _ = make_mlp_views(
        flat,
        torch.ones(B, M, N),
        torch.ones(B, M),
        torch.ones(B, N),
        0.4,
        generator=gen,
    )
    masked = x_ctx != 1.0
    k = int(0.4 * D_in)
    freq = masked.float().mean(dim=0)
    assert torch.allclose(freq, torch.full((D_in,), k / D_in), atol=0.03)
    # pairs of positions: P(both masked) = k(k-1) / (D(D-1)) for subsets
    both = (masked[:, 0] & masked[:, 1]).float().mean()
    assert float(both) == pytest.approx(k * (k - 1) / (D_in * (D_in - 1)), abs=0.02)


def test_make_gnn_views_masks_nodes(graph_batch):
    batch_graph = graph_batch[0]
    original_c = batch_graph.constraint_features.clone()
    original_v = batch_graph.variable_features.clone()
    gen = torch.Generator().manual_seed(0)
    ctx, tgt, m_cons, m_vars = make_gnn_views(batch_graph, 0.3, generator=gen)
    n_c, n_v = 17, 20
    assert int(m_cons.sum()) == max(1, int(0.3 * n_c))
    assert int(m_vars.sum()) == max(1, int(0.3 * n_v))
    ctx_c, ctx_e_index, ctx_e, ctx_v = ctx
    assert torch.all(ctx_c[m_cons] == 0) and torch.all(ctx_v[m_vars] == 0)
    assert torch.equal(ctx_c[~m_cons], original_c[~m_cons])
    assert torch.equal(ctx_v[~m_vars], original_v[~m_vars])
    assert ctx_e_index is batch_graph.edge_index and ctx_e is batch_graph.edge_attr
    assert tgt[0] is batch_graph.constraint_features
    assert tgt[3] is batch_graph.variable_features
    assert torch.equal(batch_graph.constraint_features, original_c)  # not in place
    _, _, m_cons0, m_vars0 = make_gnn_views(batch_graph, 0.0)
    assert int(m_cons0.sum()) == 1 and int(m_vars0.sum()) == 1


def grads(module: torch.nn.Module) -> list[torch.Tensor | None]:
    return [p.grad for p in module.parameters()]


def test_jepa_loss_mlp_ema_gives_no_gradient_to_target(mlp_batch):
    model_input, A, b, c, *_ = mlp_batch
    torch.manual_seed(0)
    online = KKTNetMLP(A.shape[1], A.shape[2], hidden=16)
    target = deepcopy(online)
    ema_update(target, KKTNetMLP(A.shape[1], A.shape[2], hidden=16), m=0.5)
    gen = torch.Generator().manual_seed(0)
    x_ctx, x_tgt = make_mlp_views(model_input, A, b, c, 0.5, generator=gen)
    loss = jepa_loss_mlp(online, target, x_ctx, x_tgt, "ema")
    loss.backward()
    assert all(g is None for g in grads(target))
    assert all(g is not None for g in grads(online.jepa_pred))
    expected = cosine_pred_loss(
        online.jepa_pred(online.jepa_embed(x_ctx)), target.jepa_embed(x_tgt)
    )
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-6)
    with pytest.raises(ValueError, match="mode"):
        jepa_loss_mlp(online, target, x_ctx, x_tgt, "byol")


def test_jepa_loss_mlp_simsiam_gradient_only_through_online_branch(mlp_batch):
    model_input, A, b, c, *_ = mlp_batch
    torch.manual_seed(1)
    net = KKTNetMLP(A.shape[1], A.shape[2], hidden=16)
    gen = torch.Generator().manual_seed(1)
    x_ctx, x_tgt = make_mlp_views(model_input, A, b, c, 0.5, generator=gen)
    jepa_loss_mlp(net, net, x_ctx, x_tgt, "simsiam").backward()
    got = [g.clone() for g in grads(net) if g is not None]
    net.zero_grad(set_to_none=True)
    # reference: the target embedding as a constant
    z_t = net.jepa_embed(x_tgt).detach()
    cosine_pred_loss(net.jepa_pred(net.jepa_embed(x_ctx)), z_t).backward()
    ref = [g.clone() for g in grads(net) if g is not None]
    assert len(got) == len(ref) > 0
    for g, r in zip(got, ref):
        torch.testing.assert_close(g, r)
    # without the stop-gradient the trunk gradient would differ
    net.zero_grad(set_to_none=True)
    cosine_pred_loss(
        net.jepa_pred(net.jepa_embed(x_ctx)), net.jepa_embed(x_tgt)
    ).backward()
    assert not torch.allclose(net.net[0].weight.grad, got[0])


class FixedTarget(torch.nn.Module):
    """A target whose node embeddings are given, to probe what the loss reads."""

    def __init__(self, zc: torch.Tensor, zv: torch.Tensor) -> None:
        super().__init__()
        self.zc, self.zv = zc, zv

    def jepa_embed_nodes(self, *graph):
        return self.zc, self.zv


def test_jepa_loss_gnn_depends_only_on_masked_target_nodes(graph_batch):
    batch_graph = graph_batch[0]
    torch.manual_seed(2)
    online = GNNPolicy(embedding_size=8, gnn_layers=2)
    gen = torch.Generator().manual_seed(2)
    ctx, tgt, m_cons, m_vars = make_gnn_views(batch_graph, 0.3, generator=gen)
    zc_t, zv_t = online.jepa_embed_nodes(*tgt)
    zc_t, zv_t = zc_t.detach(), zv_t.detach()
    loss = jepa_loss_gnn(
        online, FixedTarget(zc_t, zv_t), ctx, tgt, m_cons, m_vars, "ema"
    )
    # hand formula on the masked nodes
    zc_o, zv_o = online.jepa_embed_nodes(*ctx)
    expected = 0.5 * (
        cosine_pred_loss(online.jepa_pred_c(zc_o[m_cons]), zc_t[m_cons])
        + cosine_pred_loss(online.jepa_pred_v(zv_o[m_vars]), zv_t[m_vars])
    )
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-6)
    # replacing the target embeddings of every unmasked node changes nothing
    noise_c = torch.nn.functional.normalize(torch.randn_like(zc_t), dim=-1)
    noise_v = torch.nn.functional.normalize(torch.randn_like(zv_t), dim=-1)
    zc_u = torch.where(m_cons[:, None], zc_t, noise_c)
    zv_u = torch.where(m_vars[:, None], zv_t, noise_v)
    loss_u = jepa_loss_gnn(
        online, FixedTarget(zc_u, zv_u), ctx, tgt, m_cons, m_vars, "ema"
    )
    assert float(loss_u.detach()) == pytest.approx(float(loss.detach()), rel=1e-6)
    # replacing those of one masked node of each kind does change it
    zc_m, zv_m = zc_t.clone(), zv_t.clone()
    zc_m[m_cons.nonzero()[0]] *= -1
    zv_m[m_vars.nonzero()[0]] *= -1
    loss_m = jepa_loss_gnn(
        online, FixedTarget(zc_m, zv_m), ctx, tgt, m_cons, m_vars, "ema"
    )
    assert abs(float(loss_m.detach()) - float(loss.detach())) > 1e-3


def test_jepa_loss_gnn_gradients(graph_batch):
    batch_graph = graph_batch[0]
    torch.manual_seed(3)
    online = GNNPolicy(embedding_size=8, gnn_layers=1)
    target = deepcopy(online)
    for p in target.parameters():
        p.requires_grad_(False)
    gen = torch.Generator().manual_seed(3)
    views = make_gnn_views(batch_graph, 0.3, generator=gen)
    jepa_loss_gnn(online, target, *views, "ema").backward()
    assert all(p.grad is None for p in target.parameters())
    assert online.jepa_pred_c[0].weight.grad is not None
    assert online.jepa_pred_v[0].weight.grad is not None
    # simsiam: same gradients as with a constant target embedding
    online.zero_grad(set_to_none=True)
    jepa_loss_gnn(online, online, *views, "simsiam").backward()
    got = [p.grad.clone() for p in online.parameters() if p.grad is not None]
    online.zero_grad(set_to_none=True)
    zc_t, zv_t = (z.detach() for z in online.jepa_embed_nodes(*views[1]))
    jepa_loss_gnn(online, FixedTarget(zc_t, zv_t), *views, "simsiam").backward()
    ref = [p.grad.clone() for p in online.parameters() if p.grad is not None]
    assert len(got) == len(ref) > 0
    for g, r in zip(got, ref):
        torch.testing.assert_close(g, r)
