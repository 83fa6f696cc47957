"""JEPA utilities of the spec: EMA teacher, cosine loss, JEPA losses, masked views.

The JEPA objective predicts, in embedding space, the target network's
embedding of the full input from the online network's embedding of a masked
copy ("context view"). ``mode="ema"`` takes the target from a momentum copy of
the online network (:func:`ema_update` after every optimizer step);
``mode="simsiam"`` takes it from the online network itself with a stop-gradient.
"""

from __future__ import annotations

import torch
from torch_geometric.data import Batch

from kkt_nets.models.models import GNNPolicy, KKTNetMLP

JEPA_MODES = ("ema", "simsiam")

GraphView = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
"""``(constraint_features, edge_index, edge_attr, variable_features)``."""


def _check_mode(mode: str) -> None:
    """Raise unless ``mode`` is one of :data:`JEPA_MODES`."""
    if mode not in JEPA_MODES:
        raise ValueError(f"mode must be one of {JEPA_MODES}, got {mode!r}")


@torch.no_grad()
def ema_update(target: torch.nn.Module, online: torch.nn.Module, m: float) -> None:
    """In place ``p_target <- m p_target + (1 - m) p_online`` for every parameter.

    Parameters
    ----------
    target : torch.nn.Module
        The EMA teacher (a ``deepcopy`` of ``online``), updated in place.
    online : torch.nn.Module
        The trained network.
    m : float
        Momentum in ``[0, 1]`` (1 freezes the teacher, 0 copies the online net).
    """
    for p_t, p_o in zip(target.parameters(), online.parameters()):
        p_t.data.mul_(m).add_(p_o.data, alpha=1.0 - m)


def cosine_pred_loss(p: torch.Tensor, z_t: torch.Tensor) -> torch.Tensor:
    """Mean of ``2 - 2 cos(p, z_t)`` over rows (BYOL's normalized MSE).

    Parameters
    ----------
    p : Tensor
        ``[K, D]`` predictions (normalized here).
    z_t : Tensor
        ``[K, D]`` targets, already L2-normalized.

    Returns
    -------
    Tensor
        Scalar in ``[0, 4]``: 0 for aligned, 4 for opposite vectors.
    """
    p = torch.nn.functional.normalize(p, dim=-1)
    return (2.0 - 2.0 * (p * z_t).sum(dim=-1)).mean()


def jepa_loss_mlp(
    online: KKTNetMLP,
    target_or_online: KKTNetMLP,
    x_ctx: torch.Tensor,
    x_tgt: torch.Tensor,
    mode: str,
) -> torch.Tensor:
    """JEPA loss of the MLP: predict the target embedding of ``x_tgt`` from ``x_ctx``.

    Parameters
    ----------
    online : KKTNetMLP
        The trained network (context branch and predictor).
    target_or_online : KKTNetMLP
        The EMA teacher in ``"ema"`` mode, ``online`` itself in ``"simsiam"``.
    x_ctx, x_tgt : Tensor
        ``[B, D_in]`` context and target views (:func:`make_mlp_views`).
    mode : {"ema", "simsiam"}
        ``"ema"`` embeds the target under ``no_grad``; ``"simsiam"`` under
        grad but detached. Either way no gradient flows through the target.

    Returns
    -------
    Tensor
        Scalar :func:`cosine_pred_loss`.

    Raises
    ------
    ValueError
        If ``mode`` is not one of :data:`JEPA_MODES`.
    """
    _check_mode(mode)
    # mode: "ema" uses target_or_online as EMA teacher; "simsiam": same net with
    # stop-grad
    z_o = online.jepa_embed(x_ctx)  # [B, D]
    with torch.no_grad() if mode == "ema" else torch.enable_grad():
        z_t = target_or_online.jepa_embed(x_tgt).detach()
    p = online.jepa_pred(z_o)
    return cosine_pred_loss(p, z_t)


def jepa_loss_gnn(
    online: GNNPolicy,
    target_or_online: GNNPolicy,
    ctx: GraphView,
    tgt: GraphView,
    mask_cons: torch.Tensor,
    mask_vars: torch.Tensor,
    mode: str,
) -> torch.Tensor:
    """JEPA loss of the GNN on the masked nodes only.

    Parameters
    ----------
    online : GNNPolicy
        The trained network (context branch and predictors).
    target_or_online : GNNPolicy
        The EMA teacher in ``"ema"`` mode, ``online`` itself in ``"simsiam"``.
    ctx, tgt : tuple of Tensor
        ``(constraint_features, edge_index, edge_attr, variable_features)`` of
        the context and target views (:func:`make_gnn_views`).
    mask_cons : Tensor
        ``[n_c]`` bool, the masked constraint nodes.
    mask_vars : Tensor
        ``[n_v]`` bool, the masked variable nodes.
    mode : {"ema", "simsiam"}
        As in :func:`jepa_loss_mlp`.

    Returns
    -------
    Tensor
        Scalar, the mean of the constraint and variable cosine losses.

    Raises
    ------
    ValueError
        If ``mode`` is not one of :data:`JEPA_MODES`.
    """
    _check_mode(mode)
    # ctx/tgt each: (constraint_features, edge_index, edge_attr, variable_features)
    zc_o, zv_o = online.jepa_embed_nodes(*ctx)
    with torch.no_grad() if mode == "ema" else torch.enable_grad():
        zc_t, zv_t = target_or_online.jepa_embed_nodes(*tgt)
        zc_t, zv_t = zc_t.detach(), zv_t.detach()

    pc = online.jepa_pred_c(zc_o[mask_cons])
    pv = online.jepa_pred_v(zv_o[mask_vars])

    loss_c = cosine_pred_loss(pc, zc_t[mask_cons])
    loss_v = cosine_pred_loss(pv, zv_t[mask_vars])
    return 0.5 * (loss_c + loss_v)


def make_mlp_views(
    flat_input: torch.Tensor,
    A: torch.Tensor,
    b: torch.Tensor,
    c: torch.Tensor,
    mask_ratio: float,
    *,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Context and target views of flat MLP inputs.

    In every row, ``k = int(mask_ratio * D_in)`` entries chosen uniformly at
    random without replacement are replaced by ``N(0, 0.01^2)`` noise in the
    context view; the target view is the input itself. The ``k`` smallest of
    ``D_in`` float64 uniforms per row (``kthvalue``, linear time; ties have
    probability ~1e-12) are the same uniform random subsets as the spec's
    per-row ``randperm`` loop, 4x faster than sorting at ``D_in = 7700``.

    Parameters
    ----------
    flat_input : Tensor
        ``[B, D_in]`` with ``D_in = M*N + M + N``.
    A : Tensor
        ``[B, M, N]`` (only its shape is used).
    b, c : Tensor
        ``[B, M]``, ``[B, N]`` (unused; kept for the spec's signature).
    mask_ratio : float
        Fraction of entries masked per row, in ``[0, 1]``.
    generator : torch.Generator, optional
        Source of randomness (on ``flat_input``'s device), for reproducibility.

    Returns
    -------
    x_ctx : Tensor
        ``[B, D_in]`` masked copy.
    x_tgt : Tensor
        ``flat_input`` itself.

    Raises
    ------
    ValueError
        If ``mask_ratio`` is outside ``[0, 1]`` or ``flat_input`` does not
        have ``D_in`` columns.
    """
    if not 0.0 <= mask_ratio <= 1.0:
        raise ValueError(f"mask_ratio must be in [0, 1], got {mask_ratio!r}")
    B, M, N = A.shape
    D_in = M * N + M + N
    if tuple(flat_input.shape) != (B, D_in):
        raise ValueError(
            f"flat_input must have shape ({B}, {D_in}) to match A "
            f"{tuple(A.shape)}, got {tuple(flat_input.shape)}"
        )
    device = flat_input.device

    k = int(mask_ratio * D_in)
    if k < 1:  # safeguard
        return flat_input, flat_input

    draws = torch.rand(B, D_in, generator=generator, device=device, dtype=torch.float64)
    mask = draws <= draws.kthvalue(k, dim=1, keepdim=True).values

    noise = torch.zeros_like(flat_input).normal_(0, 0.01, generator=generator)
    x_tgt = flat_input
    # masked positions: zero plus a small corruption
    x_ctx = torch.where(mask, noise, flat_input)

    return x_ctx, x_tgt


def make_gnn_views(
    batch_graph: Batch,
    mask_ratio_nodes: float,
    *,
    generator: torch.Generator | None = None,
) -> tuple[GraphView, GraphView, torch.Tensor, torch.Tensor]:
    """Context and target views of a batched graph by node masking.

    ``max(1, int(mask_ratio_nodes * n))`` constraint nodes and as many (by the
    same rule) variable nodes of the whole batch, drawn uniformly without
    replacement, get all-zero features in the context view; edges are kept.

    Parameters
    ----------
    batch_graph : torch_geometric.data.Batch
        Reads ``constraint_features``, ``variable_features``, ``edge_index``
        and ``edge_attr``.
    mask_ratio_nodes : float
        Fraction of nodes of each kind masked, in ``[0, 1]``.
    generator : torch.Generator, optional
        Source of randomness (on the features' device), for reproducibility.

    Returns
    -------
    context : tuple of Tensor
        ``(ctx_c, edge_index, edge_attr, ctx_v)`` with masked node features.
    target : tuple of Tensor
        The original ``(constraint_features, edge_index, edge_attr,
        variable_features)``.
    m_cons : Tensor
        ``[n_c]`` bool, the masked constraint nodes.
    m_vars : Tensor
        ``[n_v]`` bool, the masked variable nodes.

    Raises
    ------
    ValueError
        If ``mask_ratio_nodes`` is outside ``[0, 1]``.
    """
    if not 0.0 <= mask_ratio_nodes <= 1.0:
        raise ValueError(
            f"mask_ratio_nodes must be in [0, 1], got {mask_ratio_nodes!r}"
        )
    n_c = batch_graph.constraint_features.size(0)
    n_v = batch_graph.variable_features.size(0)
    device = batch_graph.constraint_features.device

    m_cons = torch.zeros(n_c, dtype=torch.bool, device=device)
    m_vars = torch.zeros(n_v, dtype=torch.bool, device=device)

    num_mc = max(1, int(mask_ratio_nodes * n_c))
    num_mv = max(1, int(mask_ratio_nodes * n_v))
    m_cons[torch.randperm(n_c, generator=generator, device=device)[:num_mc]] = True
    m_vars[torch.randperm(n_v, generator=generator, device=device)[:num_mv]] = True

    # context = masked copy; target = original
    ctx_c = batch_graph.constraint_features.clone()
    ctx_v = batch_graph.variable_features.clone()
    ctx_e = batch_graph.edge_attr

    ctx_c[m_cons] = 0.0
    ctx_v[m_vars] = 0.0

    context_tuple = (ctx_c, batch_graph.edge_index, ctx_e, ctx_v)
    target_tuple = (
        batch_graph.constraint_features,
        batch_graph.edge_index,
        batch_graph.edge_attr,
        batch_graph.variable_features,
    )
    return context_tuple, target_tuple, m_cons, m_vars
