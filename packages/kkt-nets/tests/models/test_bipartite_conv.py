"""Tests of ``kkt_nets/models/bipartite_conv.py`` on its own.

References are independent of the layer's code: a hand-computed message pass on
a tiny bipartite graph with literal weights, a numpy re-implementation of the
documented formula, and a per-edge loop; plus permutation equivariance and
gradient flow to every parameter.
"""

import numpy as np
import torch

from kkt_nets.models.bipartite_conv import BipartiteGraphConvolution

torch.set_num_threads(1)

# A tiny bipartite graph: 3 source (variable) nodes, 3 target (constraint) nodes;
# edges (source j, target i, a_ij). Target 2 has no edge.
EDGES = [(0, 0, 2.0), (1, 0, -1.0), (2, 1, 3.0), (0, 1, 1.0)]
SOURCE = [[1.0, 2.0], [3.0, -1.0], [0.0, 1.0]]
TARGET = [[5.0, 5.0], [-2.0, 0.0], [1.0, -3.0]]


def graph():
    edge_index = torch.tensor([[j for j, _, _ in EDGES], [i for _, i, _ in EDGES]])
    edge_attr = torch.tensor([[a] for _, _, a in EDGES])
    return torch.tensor(SOURCE), edge_index, edge_attr, torch.tensor(TARGET)


def set_weights(conv, weights):
    """Copy numpy arrays into the parameters named by ``weights``."""
    params = dict(conv.named_parameters())
    with torch.no_grad():
        for name, value in weights.items():
            params[name].copy_(torch.as_tensor(value, dtype=torch.float32))


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
    # target 4 has no edge: the output module sees a zero message and its own h_4
    with torch.no_grad():
        alone = conv.output_module(torch.cat([torch.zeros(8), target[4]]))
    torch.testing.assert_close(got[4], alone, rtol=1e-5, atol=1e-6)


def test_reset_parameters_and_repr():
    conv = BipartiteGraphConvolution(4)
    before = [p.clone() for p in conv.parameters()]
    conv.reset_parameters()
    assert any(not torch.equal(a, b) for a, b in zip(before, conv.parameters()))
    assert repr(conv) == "BipartiteGraphConvolution(4)"


def test_hand_computed_message_pass_is_relu_of_a_x_plus_skip():
    # message MLP silenced, W_v = I, output = I @ relu([I I] [sum_j m_ij, h_i]):
    # h_i' = relu(sum_j a_ij h_j + h_i), computed by hand below
    conv = BipartiteGraphConvolution(2)
    eye = np.eye(2)
    set_weights(
        conv,
        {
            "lin_target.weight": [[7.0, -3.0], [2.0, 4.0]],  # irrelevant here
            "lin_target.bias": [1.0, -1.0],
            "lin_edge.weight": [[5.0], [-5.0]],
            "lin_source.weight": [[1.0, 1.0], [0.0, 2.0]],
            "lin_value.weight": eye,
            "message_mlp.2.weight": np.zeros((2, 2)),
            "message_mlp.2.bias": np.zeros(2),
            "output_module.0.weight": np.hstack([eye, eye]),
            "output_module.0.bias": np.zeros(2),
            "output_module.2.weight": eye,
            "output_module.2.bias": np.zeros(2),
        },
    )
    # target 0: 2 [1, 2] - [3, -1] + [5, 5] = [4, 10]
    # target 1: 3 [0, 1] + [1, 2] + [-2, 0] = [-1, 5] -> relu [0, 5]
    # target 2: no edge, [1, -3] -> relu [1, 0]
    expected = torch.tensor([[4.0, 10.0], [0.0, 5.0], [1.0, 0.0]])
    with torch.no_grad():
        got = conv(*graph())
    torch.testing.assert_close(got, expected)


def numpy_reference(weights, source, edges, target):
    """The documented formula in numpy, one edge at a time."""

    def linear(name, x, bias=True):
        out = np.asarray(weights[f"{name}.weight"]) @ x
        return out + np.asarray(weights[f"{name}.bias"]) if bias else out

    def layer_norm(x):
        normed = (x - x.mean()) / np.sqrt(x.var() + 1e-5)
        return normed * weights["message_mlp.0.weight"] + weights["message_mlp.0.bias"]

    def relu(x):
        return np.maximum(x, 0.0)

    summed = np.zeros_like(target)
    for j, i, a in edges:
        pre = linear("lin_target", target[i])
        pre = pre + linear("lin_edge", np.array([a]), bias=False)
        pre = pre + linear("lin_source", source[j], bias=False)
        message = linear("message_mlp.2", relu(layer_norm(pre)))
        summed[i] += message + a * linear("lin_value", source[j], bias=False)
    out = []
    for i in range(len(target)):
        hidden = relu(linear("output_module.0", np.concatenate([summed[i], target[i]])))
        out.append(linear("output_module.2", hidden))
    return np.array(out)


def test_full_formula_matches_a_numpy_reference_with_known_weights():
    conv = BipartiteGraphConvolution(2)
    rng = np.random.default_rng(0)
    weights = {
        name: rng.normal(size=tuple(p.shape)).round(2)
        for name, p in conv.named_parameters()
    }
    set_weights(conv, weights)
    with torch.no_grad():
        got = conv(*graph()).numpy()
    want = numpy_reference(weights, np.array(SOURCE), EDGES, np.array(TARGET))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_permutation_equivariance_of_sources_targets_and_edges():
    torch.manual_seed(1)
    conv = BipartiteGraphConvolution(4)
    source, target = torch.randn(5, 4), torch.randn(4, 4)
    edge_index = torch.tensor([[0, 1, 2, 3, 4, 4, 1], [0, 0, 1, 2, 2, 3, 3]])
    edge_attr = torch.randn(7, 1)
    with torch.no_grad():
        base = conv(source, edge_index, edge_attr, target)
        # relabel sources: node j becomes node perm_inv[j]; outputs unchanged
        perm = torch.tensor([3, 0, 4, 1, 2])  # new node k is old node perm[k]
        inv = torch.argsort(perm)
        moved = torch.stack([inv[edge_index[0]], edge_index[1]])
        torch.testing.assert_close(
            conv(source[perm], moved, edge_attr, target), base, rtol=1e-5, atol=1e-6
        )
        # relabel targets: outputs are permuted the same way
        perm_t = torch.tensor([2, 3, 1, 0])
        inv_t = torch.argsort(perm_t)
        moved_t = torch.stack([edge_index[0], inv_t[edge_index[1]]])
        torch.testing.assert_close(
            conv(source, moved_t, edge_attr, target[perm_t]),
            base[perm_t],
            rtol=1e-5,
            atol=1e-6,
        )
        # reorder the edges: a sum does not depend on their order
        order = torch.tensor([6, 2, 0, 5, 1, 4, 3])
        torch.testing.assert_close(
            conv(source, edge_index[:, order], edge_attr[order], target),
            base,
            rtol=1e-5,
            atol=1e-6,
        )


def test_gradient_reaches_every_parameter_and_both_node_sets():
    torch.manual_seed(2)
    conv = BipartiteGraphConvolution(4)
    source = torch.randn(5, 4, requires_grad=True)
    target = torch.randn(4, 4, requires_grad=True)
    edge_index = torch.tensor([[0, 1, 2, 3, 4, 4, 1], [0, 0, 1, 2, 2, 3, 3]])
    edge_attr = torch.randn(7, 1, requires_grad=True)
    out = conv(source, edge_index, edge_attr, target)
    (out * torch.randn_like(out)).sum().backward()
    for name, param in conv.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name
    for tensor in (source, target, edge_attr):
        assert tensor.grad is not None and tensor.grad.abs().sum() > 0
