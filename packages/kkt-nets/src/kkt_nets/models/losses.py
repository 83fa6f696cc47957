"""The KKT residual loss for ``min c^T x  s.t.  A x <= b`` (no labels needed)."""

from __future__ import annotations

import torch


def _masked_mean(term: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-instance mean of ``term [B, K]`` over ``mask [B, K]`` -> ``[B]``."""
    count = mask.sum(dim=1).clamp(min=1)
    return (term * mask).sum(dim=1) / count


def kkt_loss(
    y_pred: torch.Tensor,
    A: torch.Tensor,
    b: torch.Tensor,
    c: torch.Tensor,
    mask_m: torch.Tensor,
    mask_n: torch.Tensor,
    primal_weight: float = 0.1,
    dual_weight: float = 0.1,
    stationarity_weight: float = 0.6,
    complementary_slackness_weight: float = 0.2,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Weighted squared KKT residuals of a predicted primal-dual pair.

    With ``x = y_pred[:, :N]``, ``lambda = y_pred[:, N:]`` and the slack
    ``s = A x - b``, the four terms are

    * primal feasibility ``relu(s_i)^2``, mean over real rows;
    * dual feasibility ``relu(-lambda_i)^2``, mean over real rows;
    * stationarity ``(c + A^T lambda)_j^2``, mean over real columns;
    * complementary slackness ``(lambda_i s_i)^2``, mean over real rows.

    Each mean is taken per instance over its own real rows/columns (so an
    instance's terms do not depend on how much it is padded), then the
    per-instance values are averaged over the batch (every instance counts
    equally, whatever its size). Predictions in padded positions are ignored.

    Parameters
    ----------
    y_pred : Tensor
        ``[B, N + M]`` = ``cat(x_pad, lam_pad)``.
    A : Tensor
        ``[B, M, N]``, zero-padded.
    b : Tensor
        ``[B, M]``.
    c : Tensor
        ``[B, N]``.
    mask_m : Tensor
        ``[B, M]`` bool, True on real rows.
    mask_n : Tensor
        ``[B, N]`` bool, True on real columns.
    primal_weight, dual_weight : float
        Weights of the primal and dual feasibility terms in the total.
    stationarity_weight, complementary_slackness_weight : float
        Weights of the stationarity and complementary slackness terms.

    Returns
    -------
    loss : Tensor
        Scalar, the weighted sum of the four batch-mean terms.
    terms : dict of str to Tensor
        ``"primal"``, ``"dual"``, ``"stationarity"``,
        ``"complementary_slackness"``: the batch-mean terms, detached scalars.

    Raises
    ------
    ValueError
        If the shapes disagree.
    """
    B, M, N = A.shape
    expected = {
        "y_pred": (B, N + M),
        "b": (B, M),
        "c": (B, N),
        "mask_m": (B, M),
        "mask_n": (B, N),
    }
    for label, value in zip(expected, (y_pred, b, c, mask_m, mask_n)):
        if tuple(value.shape) != expected[label]:
            raise ValueError(
                f"{label} must have shape {expected[label]} to match A "
                f"{tuple(A.shape)}, got {tuple(value.shape)}"
            )
    x = y_pred[:, :N] * mask_n
    lam = y_pred[:, N:] * mask_m
    slack = torch.bmm(A, x.unsqueeze(-1)).squeeze(-1) - b
    gradient = c + torch.bmm(A.transpose(1, 2), lam.unsqueeze(-1)).squeeze(-1)
    terms = {
        "primal": _masked_mean(torch.relu(slack) ** 2, mask_m).mean(),
        "dual": _masked_mean(torch.relu(-lam) ** 2, mask_m).mean(),
        "stationarity": _masked_mean(gradient**2, mask_n).mean(),
        "complementary_slackness": _masked_mean((lam * slack) ** 2, mask_m).mean(),
    }
    loss = (
        primal_weight * terms["primal"]
        + dual_weight * terms["dual"]
        + stationarity_weight * terms["stationarity"]
        + complementary_slackness_weight * terms["complementary_slackness"]
    )
    return loss, {key: value.detach() for key, value in terms.items()}
