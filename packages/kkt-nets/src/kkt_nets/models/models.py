"""The two networks: :class:`KKTNetMLP` (flat input) and :class:`GNNPolicy` (graph).

Both predict a primal ``x`` and a dual ``lambda`` for ``min c^T x  s.t.
A x <= b`` and are trained on the KKT residuals (:func:`kkt_loss`); the JEPA
projector/predictor heads and embedding methods are the spec's, verbatim.
The training loop turns either output into one ``y_pred [B, N + M] =
cat(x_pad, lam_pad)`` (the MLP's forward already has that form; the GNN's
per-node outputs go through :func:`nodes_to_padded`).
"""

from __future__ import annotations

from argparse import Namespace

import torch
from torch import nn

from kkt_nets.data.datasets import C_FEATS, V_FEATS
from kkt_nets.models.bipartite_conv import BipartiteGraphConvolution


class KKTNetMLP(nn.Module):
    """MLP from the flat ``[vec(A), b, c]`` of a padded ``(m, n)`` LP to ``x, lambda``.

    Parameters
    ----------
    m, n : int
        Padded number of rows and variables (the dataset's ``max_m``, ``max_n``).
    hidden : int
        Trunk width (and JEPA projection width).
    num_layers : int
        Number of ``Linear + SELU`` layers in the trunk ``self.net``.

    Raises
    ------
    ValueError
        If a size is not positive.

    Notes
    -----
    ``head_lam`` is a plain linear layer: the raw ``lambda`` may be negative and
    the dual-feasibility term of the loss penalises that.
    """

    def __init__(self, m: int, n: int, hidden: int = 256, num_layers: int = 3) -> None:
        super().__init__()
        for label, value in (("m", m), ("n", n), ("hidden", hidden)):
            if value < 1:
                raise ValueError(f"{label} must be a positive int, got {value!r}")
        if num_layers < 1:
            raise ValueError(f"num_layers must be at least 1, got {num_layers!r}")
        self.m = m
        self.n = n
        layers: list[nn.Module] = [nn.Linear(m * n + m + n, hidden), nn.SELU()]
        for _ in range(num_layers - 1):
            layers += [nn.Linear(hidden, hidden), nn.SELU()]
        self.net = nn.Sequential(*layers)
        # --- JEPA heads (shared trunk -> projector/predictor) ---
        proj_dim = hidden  # or 256
        self.jepa_proj = nn.Sequential(
            nn.Linear(hidden, proj_dim), nn.SELU(), nn.Linear(proj_dim, proj_dim)
        )
        self.jepa_pred = nn.Sequential(
            nn.Linear(proj_dim, proj_dim), nn.SELU(), nn.Linear(proj_dim, proj_dim)
        )
        self.head_x = nn.Linear(hidden, n)
        self.head_lam = nn.Linear(hidden, m)

    def forward(self, flat_input: torch.Tensor) -> torch.Tensor:
        """Predicted ``y_pred [B, n + m] = cat(x, lambda)``.

        Parameters
        ----------
        flat_input : Tensor
            ``[B, m*n + m + n]`` from :func:`~kkt_nets.data.datasets.pad_collate`.

        Returns
        -------
        Tensor
            ``[B, n + m]``.
        """
        h = self.net(flat_input)
        return torch.cat([self.head_x(h), self.head_lam(h)], dim=-1)

    def encode_trunk(self, flat_input: torch.Tensor) -> torch.Tensor:
        """Trunk features ``[B, hidden]`` of the flat input."""
        return self.net(flat_input)  # [B, hidden]

    def jepa_embed(self, flat_input: torch.Tensor) -> torch.Tensor:
        """L2-normalised JEPA embedding ``[B, proj_dim]`` (trunk, then projector)."""
        z = self.encode_trunk(flat_input)
        z = self.jepa_proj(z)
        return torch.nn.functional.normalize(z, dim=-1)  # [B, D]


class GNNPolicy(nn.Module):
    """Bipartite GNN from an LP graph to a per-variable ``x`` and per-row ``lambda``.

    Parameters
    ----------
    args : argparse.Namespace
        Reads ``args.embedding_size`` (node embedding width ``d``) and
        ``args.gnn_layers`` (rounds of message passing).

    Raises
    ------
    ValueError
        If either is not a positive int.

    Notes
    -----
    Constraint and variable features (:data:`~kkt_nets.data.datasets.C_FEATS`,
    :data:`~kkt_nets.data.datasets.V_FEATS`) are embedded by two-layer MLPs;
    each round updates constraints from variables, then variables from
    constraints, with :class:`BipartiteGraphConvolution` layers (each embeds
    the edge value ``A_ij`` itself). Heads act per node: ``x`` on variables,
    ``lambda`` on constraints through a softplus, so ``lambda >= 0``.
    """

    def __init__(self, args: Namespace) -> None:
        super().__init__()
        for label in ("embedding_size", "gnn_layers"):
            value = getattr(args, label)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"args.{label} must be a positive int, got {value!r}")
        d = args.embedding_size
        self.cons_embedding = nn.Sequential(
            nn.Linear(C_FEATS, d), nn.ReLU(), nn.Linear(d, d), nn.ReLU()
        )
        self.var_embedding = nn.Sequential(
            nn.Linear(V_FEATS, d), nn.ReLU(), nn.Linear(d, d), nn.ReLU()
        )
        self.convs_v_to_c = nn.ModuleList(
            BipartiteGraphConvolution(d) for _ in range(args.gnn_layers)
        )
        self.convs_c_to_v = nn.ModuleList(
            BipartiteGraphConvolution(d) for _ in range(args.gnn_layers)
        )
        self.head_x = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, 1))
        self.head_lam = nn.Sequential(
            nn.Linear(d, d), nn.ReLU(), nn.Linear(d, 1), nn.Softplus()
        )
        # Projectors
        self.jepa_proj_v = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d))
        self.jepa_proj_c = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d))
        # Predictors (online only)
        self.jepa_pred_v = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d))
        self.jepa_pred_c = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d))

    def encode(
        self,
        constraint_features: torch.Tensor,
        edge_indices: torch.Tensor,
        edge_features: torch.Tensor,
        variable_features: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Constraint and variable embeddings after message passing.

        Parameters
        ----------
        constraint_features : Tensor
            ``[n_c, C_FEATS]``.
        edge_indices : Tensor
            ``[2, E]`` long; row 0 indexes constraints, row 1 variables.
        edge_features : Tensor
            ``[E, 1]``, the values ``A_ij``.
        variable_features : Tensor
            ``[n_v, V_FEATS]``.

        Returns
        -------
        c_emb : Tensor
            ``[n_c, d]``.
        v_emb : Tensor
            ``[n_v, d]``.
        """
        reversed_edge_indices = torch.stack([edge_indices[1], edge_indices[0]])
        c = self.cons_embedding(constraint_features)
        v = self.var_embedding(variable_features)
        for conv_v_to_c, conv_c_to_v in zip(self.convs_v_to_c, self.convs_c_to_v):
            c = conv_v_to_c(v, reversed_edge_indices, edge_features, c)
            v = conv_c_to_v(c, edge_indices, edge_features, v)
        return c, v

    def forward(
        self,
        constraint_features: torch.Tensor,
        edge_indices: torch.Tensor,
        edge_features: torch.Tensor,
        variable_features: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-node predictions (arguments as in :meth:`encode`).

        Returns
        -------
        x_nodes : Tensor
            ``[n_v]``, one primal value per variable node.
        lam_nodes : Tensor
            ``[n_c]``, one non-negative dual per constraint node.
        """
        c, v = self.encode(
            constraint_features, edge_indices, edge_features, variable_features
        )
        return self.head_x(v).squeeze(-1), self.head_lam(c).squeeze(-1)

    def jepa_embed_nodes(
        self,
        constraint_features: torch.Tensor,
        edge_indices: torch.Tensor,
        edge_features: torch.Tensor,
        variable_features: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """L2-normalised projected node embeddings ``(zc [n_c, d], zv [n_v, d])``."""
        # returns L2-normalized node embeddings (constraints, variables) after
        # projectors
        c, v = self.encode(
            constraint_features, edge_indices, edge_features, variable_features
        )
        zc = torch.nn.functional.normalize(self.jepa_proj_c(c), dim=-1)
        zv = torch.nn.functional.normalize(self.jepa_proj_v(v), dim=-1)
        return zc, zv


def _scatter_to_padded(values: torch.Tensor, sizes: torch.Tensor) -> torch.Tensor:
    """Node ``values`` of consecutive graphs of ``sizes`` nodes -> ``[B, max]``."""
    sizes = sizes.to(values.device)
    graph = torch.repeat_interleave(
        torch.arange(sizes.numel(), device=sizes.device), sizes
    )
    offsets = torch.cumsum(sizes, dim=0) - sizes
    position = torch.arange(values.numel(), device=sizes.device) - offsets[graph]
    padded = values.new_zeros(sizes.numel(), int(sizes.max()))
    return padded.index_put((graph, position), values)


def nodes_to_padded(
    x_nodes: torch.Tensor,
    lam_nodes: torch.Tensor,
    m_sizes: torch.Tensor,
    n_sizes: torch.Tensor,
) -> torch.Tensor:
    """Per-node GNN outputs of a batch as one padded ``y_pred [B, N + M]``.

    Parameters
    ----------
    x_nodes : Tensor
        ``[sum(n_sizes)]``, variables of graph 0, then graph 1, ...
    lam_nodes : Tensor
        ``[sum(m_sizes)]``, constraints in the same graph order.
    m_sizes, n_sizes : Tensor
        ``[B]`` long, constraints / variables per graph.

    Returns
    -------
    Tensor
        ``cat(x_pad [B, N], lam_pad [B, M])`` with ``N = max(n_sizes)``,
        ``M = max(m_sizes)`` and zeros in the padding; differentiable in the
        node values.

    Raises
    ------
    ValueError
        If the node counts do not match the sizes.
    """
    for label, values, sizes in (
        ("x_nodes", x_nodes, n_sizes),
        ("lam_nodes", lam_nodes, m_sizes),
    ):
        if values.ndim != 1 or values.numel() != int(sizes.sum()):
            raise ValueError(
                f"{label} must be a vector of {int(sizes.sum())} node values, got "
                f"shape {tuple(values.shape)}"
            )
    return torch.cat(
        [_scatter_to_padded(x_nodes, n_sizes), _scatter_to_padded(lam_nodes, m_sizes)],
        dim=1,
    )
