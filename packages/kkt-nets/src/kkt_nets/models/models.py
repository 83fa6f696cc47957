"""The two networks: :class:`KKTNetMLP` (flat input) and :class:`GNNPolicy` (graph).

Both predict a primal ``x`` and a dual ``lambda`` for ``min c^T x  s.t.
A x <= b,  lb <= x <= ub`` through the same output layer
(:mod:`~kkt_nets.models.output_layer`): ``x`` inside its bounds by
construction, ``lambda >= 0`` through a softplus; both standardize their
inputs with training-set statistics (:class:`FeatureNormalizer`, fitted by
``fit_normalization``). The JEPA projector/predictor heads and embedding
methods are the spec's, verbatim. The training loop turns either output into
one ``y_pred [B, N + M] = cat(x_pad, lam_pad)`` (the MLP's forward already has
that form; the GNN's per-node outputs go through :func:`nodes_to_padded`).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from kkt_nets.data.datasets import C_FEATS, V_FEATS, GraphBatch, LPBatch
from kkt_nets.models.bipartite_conv import BipartiteGraphConvolution
from kkt_nets.models.output_layer import FeatureNormalizer, bounded_primal, dual_output


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
    The flat input is standardized by ``input_norm`` (a
    :class:`FeatureNormalizer`) before the trunk; ``x`` goes through
    :func:`bounded_primal` with the bounds given to :meth:`forward` and
    ``lambda`` through a softplus.
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
        self.input_norm = FeatureNormalizer(m * n + m + n)
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

    def forward(
        self,
        flat_input: torch.Tensor,
        lb: torch.Tensor | None = None,
        ub: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predicted ``y_pred [B, n + m] = cat(x, lambda)``.

        Parameters
        ----------
        flat_input : Tensor
            ``[B, m*n + m + n]`` from :func:`~kkt_nets.data.datasets.pad_collate`.
        lb, ub : Tensor, optional
            ``[B, n]`` variable bounds (``None``: free).

        Returns
        -------
        Tensor
            ``[B, n + m]``, ``lb <= x <= ub`` and ``lambda >= 0``.
        """
        h = self.encode_trunk(flat_input)
        x = bounded_primal(self.head_x(h), lb, ub)
        return torch.cat([x, dual_output(self.head_lam(h))], dim=-1)

    def encode_trunk(self, flat_input: torch.Tensor) -> torch.Tensor:
        """Trunk features ``[B, hidden]`` of the (standardized) flat input."""
        return self.net(self.input_norm(flat_input))  # [B, hidden]

    def fit_normalization(self, batches: Iterable[LPBatch]) -> None:
        """Fit ``input_norm`` to the flat inputs of ``batches`` (a training set)."""
        self.input_norm.fit(torch.cat([batch.model_input for batch in batches]))

    def jepa_embed(self, flat_input: torch.Tensor) -> torch.Tensor:
        """L2-normalized JEPA embedding ``[B, proj_dim]`` (trunk, then projector)."""
        z = self.encode_trunk(flat_input)
        z = self.jepa_proj(z)
        return torch.nn.functional.normalize(z, dim=-1)  # [B, D]


class GNNPolicy(nn.Module):
    """Bipartite GNN from an LP graph to a per-variable ``x`` and per-row ``lambda``.

    Parameters
    ----------
    embedding_size : int
        Node embedding width ``d``.
    gnn_layers : int
        Rounds of message passing.

    Raises
    ------
    ValueError
        If either is not a positive int.

    Notes
    -----
    Constraint and variable features (:data:`~kkt_nets.data.datasets.C_FEATS`:
    ``b``, degree, row mean; :data:`~kkt_nets.data.datasets.V_FEATS`: ``c``,
    degree, column mean, bounds) are standardized with training-set statistics
    and embedded by two-layer MLPs. Each round updates constraints from
    variables, then variables from constraints, with
    :class:`BipartiteGraphConvolution` layers (edge feature: the coefficient
    ``A_ij``), each as a residual update followed by a ``LayerNorm``. Heads act
    per node: ``x`` on variables through :func:`bounded_primal` (inside the
    variable's bounds), ``lambda`` on constraints through a softplus.
    """

    def __init__(self, embedding_size: int = 64, gnn_layers: int = 4) -> None:
        super().__init__()
        for label, value in (
            ("embedding_size", embedding_size),
            ("gnn_layers", gnn_layers),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{label} must be a positive int, got {value!r}")
        d = embedding_size
        self.cons_norm = FeatureNormalizer(C_FEATS)
        self.var_norm = FeatureNormalizer(V_FEATS)
        self.cons_embedding = nn.Sequential(
            nn.Linear(C_FEATS, d), nn.ReLU(), nn.Linear(d, d)
        )
        self.var_embedding = nn.Sequential(
            nn.Linear(V_FEATS, d), nn.ReLU(), nn.Linear(d, d)
        )
        layers = range(gnn_layers)
        self.convs_v_to_c = nn.ModuleList(BipartiteGraphConvolution(d) for _ in layers)
        self.convs_c_to_v = nn.ModuleList(BipartiteGraphConvolution(d) for _ in layers)
        self.norms_c = nn.ModuleList(nn.LayerNorm(d) for _ in layers)
        self.norms_v = nn.ModuleList(nn.LayerNorm(d) for _ in layers)
        self.head_x = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, 1))
        self.head_lam = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, 1))
        # Projectors
        self.jepa_proj_v = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d))
        self.jepa_proj_c = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d))
        # Predictors (online only)
        self.jepa_pred_v = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d))
        self.jepa_pred_c = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d))

    def fit_normalization(self, batches: Iterable[GraphBatch]) -> None:
        """Fit the node-feature normalizers to the graphs of ``batches``."""
        graphs = [batch.batch_graph for batch in batches]
        self.cons_norm.fit(torch.cat([g.constraint_features for g in graphs]))
        self.var_norm.fit(torch.cat([g.variable_features for g in graphs]))

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
        c = self.cons_embedding(self.cons_norm(constraint_features))
        v = self.var_embedding(self.var_norm(variable_features))
        for conv_v_to_c, conv_c_to_v, norm_c, norm_v in zip(
            self.convs_v_to_c, self.convs_c_to_v, self.norms_c, self.norms_v
        ):
            c = norm_c(c + conv_v_to_c(v, reversed_edge_indices, edge_features, c))
            v = norm_v(v + conv_c_to_v(c, edge_indices, edge_features, v))
        return c, v

    def forward(
        self,
        constraint_features: torch.Tensor,
        edge_indices: torch.Tensor,
        edge_features: torch.Tensor,
        variable_features: torch.Tensor,
        lb: torch.Tensor | None = None,
        ub: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-node predictions (arguments as in :meth:`encode`).

        Parameters
        ----------
        constraint_features, edge_indices, edge_features, variable_features
            As in :meth:`encode`.
        lb, ub : Tensor, optional
            ``[n_v]`` variable bounds (``None``: free).

        Returns
        -------
        x_nodes : Tensor
            ``[n_v]``, one primal value per variable node, inside its bounds.
        lam_nodes : Tensor
            ``[n_c]``, one non-negative dual per constraint node.
        """
        c, v = self.encode(
            constraint_features, edge_indices, edge_features, variable_features
        )
        x = bounded_primal(self.head_x(v).squeeze(-1), lb, ub)
        return x, dual_output(self.head_lam(c).squeeze(-1))

    def jepa_embed_nodes(
        self,
        constraint_features: torch.Tensor,
        edge_indices: torch.Tensor,
        edge_features: torch.Tensor,
        variable_features: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """L2-normalized projected node embeddings ``(zc [n_c, d], zv [n_v, d])``."""
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
