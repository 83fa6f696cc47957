import torch

from kkt_nets.models.bipartite_conv import BipartiteGraphConvolution

torch.set_num_threads(1)


def dense_reference(conv, source, edge_index, edge_attr, target):
    """m_ij = MLP(W_t h_i + W_e a_ij + W_s h_j) + a_ij W_v h_j, summed per target."""
    out = torch.zeros(target.shape[0], conv.emb_size)
    for (j, i), a in zip(edge_index.T.tolist(), edge_attr[:, 0].tolist()):
        pre = conv.lin_target(target[i]) + conv.lin_edge(torch.tensor([a]))
        pre = pre + conv.lin_source(source[j])
        out[i] += conv.message_mlp(pre) + a * conv.lin_value(source[j])
    return conv.output_module(torch.cat([out, target], dim=-1))


def test_convolution_matches_a_per_edge_loop():
    torch.manual_seed(0)
    conv = BipartiteGraphConvolution(8)
    source, target = torch.randn(6, 8), torch.randn(5, 8)
    edge_index = torch.tensor([[0, 1, 1, 5, 3, 0], [0, 0, 2, 3, 3, 1]])
    edge_attr = torch.randn(6, 1)
    with torch.no_grad():
        got = conv(source, edge_index, edge_attr, target)
        want = dense_reference(conv, source, edge_index, edge_attr, target)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    # a target without edges gets the output module of a zero message only
    assert torch.allclose(got[3 - 1 - 1], want[1])  # node 1 has one edge; node 2 too


def test_reset_parameters_and_repr():
    conv = BipartiteGraphConvolution(4)
    before = [p.clone() for p in conv.parameters()]
    conv.reset_parameters()
    assert any(not torch.equal(a, b) for a, b in zip(before, conv.parameters()))
    assert repr(conv) == "BipartiteGraphConvolution(4)"
