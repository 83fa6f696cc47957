"""One round of message passing across a bipartite constraint/variable graph."""

from __future__ import annotations

import torch
from torch import nn
from torch_geometric.nn import MessagePassing


class BipartiteGraphConvolution(MessagePassing):
    r"""Sum-aggregated messages from source nodes to target nodes over ``A_ij`` edges.

    For a target node ``i`` with embedding ``h_i`` and source neighbors ``j``
    joined by edges of value ``a_ij`` (the LP coefficient),

    .. math::

        m_{ij} = \mathrm{MLP}(W_t h_i + W_e a_{ij} + W_s h_j) + a_{ij} W_v h_j,
        \qquad
        h_i' = \mathrm{MLP}_{out}([\textstyle\sum_j m_{ij},\ h_i]).

    The first term is the convolution of Gasse et al. (2019); the second,
    linear in ``a_ij``, lets one layer carry products such as ``A x`` and
    ``A^T lambda`` exactly (a sum of additive terms can only approximate them).

    Parameters
    ----------
    emb_size : int
        Width of the node embeddings (source and target alike).
    """

    def __init__(self, emb_size: int) -> None:
        super().__init__(aggr="add")
        self.emb_size = emb_size
        self.lin_target = nn.Linear(emb_size, emb_size)
        self.lin_edge = nn.Linear(1, emb_size, bias=False)
        self.lin_source = nn.Linear(emb_size, emb_size, bias=False)
        self.lin_value = nn.Linear(emb_size, emb_size, bias=False)
        self.message_mlp = nn.Sequential(
            nn.LayerNorm(emb_size), nn.ReLU(), nn.Linear(emb_size, emb_size)
        )
        self.output_module = nn.Sequential(
            nn.Linear(2 * emb_size, emb_size), nn.ReLU(), nn.Linear(emb_size, emb_size)
        )

    def reset_parameters(self) -> None:
        """Re-initialize every learnable layer."""
        super().reset_parameters()
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def forward(
        self,
        source_features: torch.Tensor,
        edge_index: torch.Tensor,
        edge_attr: torch.Tensor,
        target_features: torch.Tensor,
    ) -> torch.Tensor:
        """New target embeddings from the source embeddings.

        Parameters
        ----------
        source_features : Tensor
            ``[n_source, emb_size]``.
        edge_index : Tensor
            ``[2, E]`` long; row 0 indexes sources, row 1 targets.
        edge_attr : Tensor
            ``[E, 1]`` edge values ``a_ij``.
        target_features : Tensor
            ``[n_target, emb_size]``.

        Returns
        -------
        Tensor
            ``[n_target, emb_size]``.
        """
        # the linear maps act on nodes, then their results are gathered per
        # edge (one d x d product per edge, in the message MLP, instead of four)
        source = torch.cat(
            [self.lin_source(source_features), self.lin_value(source_features)], -1
        )
        aggregated = self.propagate(
            edge_index,
            size=(source_features.size(0), target_features.size(0)),
            source=(source, None),
            target=(None, self.lin_target(target_features)),
            edge_attr=edge_attr,
        )
        return self.output_module(torch.cat([aggregated, target_features], dim=-1))

    def message(
        self, target_i: torch.Tensor, source_j: torch.Tensor, edge_attr: torch.Tensor
    ) -> torch.Tensor:
        """Message ``m_ij`` from source ``j`` to target ``i`` along each edge.

        ``target_i`` is ``W_t h_i``; ``source_j`` is ``[W_s h_j, W_v h_j]``.
        """
        projected, value = source_j.chunk(2, dim=-1)
        pre = target_i + self.lin_edge(edge_attr) + projected
        return self.message_mlp(pre) + edge_attr * value

    def __repr__(self) -> str:
        """``BipartiteGraphConvolution(emb_size)``."""
        return f"{self.__class__.__name__}({self.emb_size})"
