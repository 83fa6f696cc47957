"""Label-free losses for ``min c^T x  s.t.  A x <= b,  lb <= x <= ub``.

* :func:`kkt_loss`: the spec's weighted squared KKT residuals (unchanged for
  the spec's form, where bounds are rows and ``lb``, ``ub`` are not given;
  with bounds on the columns the bound duals are completed in closed form).
* :func:`certificate_loss`: the relative duality gap between the prediction's
  objective and its Lagrangian dual bound, plus per-block normalized primal
  and dual residuals (PDLP's termination measures, as norms, not squares),
  plus an optional supervised term. It has no cheap plateau: at ``x = lb``,
  ``lambda = 0`` the primal residual of a covering problem is large, and the
  gap term pulls the dual bound up to the objective.
"""

from __future__ import annotations

import torch

from kkt_nets.duality import (
    complete_bound_duals,
    finite_or_zero,
    lagrangian_bound_terms,
)

CERTIFICATE_TERMS = ("gap", "primal", "dual", "supervised")
"""Names of the :func:`certificate_loss` terms."""


def _masked_mean(term: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-instance mean of ``term [B, K]`` over ``mask [B, K]`` -> ``[B]``."""
    count = mask.sum(dim=1).clamp(min=1)
    return (term * mask).sum(dim=1) / count


def _residuals(
    y_pred: torch.Tensor,
    A: torch.Tensor,
    b: torch.Tensor,
    c: torch.Tensor,
    mask_m: torch.Tensor,
    mask_n: torch.Tensor,
    lb: torch.Tensor | None,
    ub: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Checked shapes; masked ``x``, ``lambda``, ``A x - b`` and ``c + A^T lambda``.

    Raises
    ------
    ValueError
        If a shape disagrees with ``A [B, M, N]``, a dtype is not floating, or
        only one of ``lb``, ``ub`` is given.
    """
    B, M, N = A.shape
    expected = {
        "y_pred": (B, N + M),
        "b": (B, M),
        "c": (B, N),
        "mask_m": (B, M),
        "mask_n": (B, N),
    }
    values = [y_pred, b, c, mask_m, mask_n]
    if (lb is None) != (ub is None):
        raise ValueError("lb and ub must be given together")
    if lb is not None:
        expected.update(lb=(B, N), ub=(B, N))
        values += [lb, ub]
    for label, value in zip(expected, values):
        if tuple(value.shape) != expected[label]:
            raise ValueError(
                f"{label} must have shape {expected[label]} to match A "
                f"{tuple(A.shape)}, got {tuple(value.shape)}"
            )
    if not y_pred.is_floating_point():
        raise ValueError(f"y_pred must be a floating tensor, got {y_pred.dtype}")
    dtype = y_pred.dtype
    A, b, c = A.to(dtype), b.to(dtype), c.to(dtype)
    x = y_pred[:, :N] * mask_n
    lam = y_pred[:, N:] * mask_m
    slack = torch.bmm(A, x.unsqueeze(-1)).squeeze(-1) - b
    gradient = c + torch.bmm(A.transpose(1, 2), lam.unsqueeze(-1)).squeeze(-1)
    return x, lam, slack * mask_m, gradient * mask_n


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
    lb: torch.Tensor | None = None,
    ub: torch.Tensor | None = None,
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

    With ``lb``, ``ub`` given (bounds on the columns), the bound duals are
    completed from ``r = c + A^T lambda`` (:mod:`kkt_nets.duality`):
    stationarity is the unabsorbed part of ``r`` (zero for bounded variables)
    and complementary slackness adds the mean over real columns of
    ``(lambda_lb (x - lb))^2 + (lambda_ub (ub - x))^2``.

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
    x, lam, slack, gradient = _residuals(y_pred, A, b, c, mask_m, mask_n, lb, ub)
    complementary = _masked_mean((lam * slack) ** 2, mask_m)
    if lb is not None:
        lam_lb, lam_ub = complete_bound_duals(gradient, lb, ub)
        bound_slack = (lam_lb * (x - finite_or_zero(lb))) ** 2 + (
            lam_ub * (finite_or_zero(ub) - x)
        ) ** 2
        complementary = complementary + _masked_mean(bound_slack, mask_n)
        gradient = lagrangian_bound_terms(gradient, lb, ub)[1]
    terms = {
        "primal": _masked_mean(torch.relu(slack) ** 2, mask_m).mean(),
        "dual": _masked_mean(torch.relu(-lam) ** 2, mask_m).mean(),
        "stationarity": _masked_mean(gradient**2, mask_n).mean(),
        "complementary_slackness": complementary.mean(),
    }
    loss = (
        primal_weight * terms["primal"]
        + dual_weight * terms["dual"]
        + stationarity_weight * terms["stationarity"]
        + complementary_slackness_weight * terms["complementary_slackness"]
    )
    return loss, {key: value.detach() for key, value in terms.items()}


def _norm(values: torch.Tensor) -> torch.Tensor:
    """Euclidean norm over the last axis with a zero gradient at zero."""
    return torch.sqrt((values**2).sum(dim=-1) + 1e-16)


def certificate_loss(
    y_pred: torch.Tensor,
    A: torch.Tensor,
    b: torch.Tensor,
    c: torch.Tensor,
    mask_m: torch.Tensor,
    mask_n: torch.Tensor,
    lb: torch.Tensor | None = None,
    ub: torch.Tensor | None = None,
    gap_weight: float = 1.0,
    primal_weight: float = 1.0,
    dual_weight: float = 1.0,
    supervised_weight: float = 0.0,
    x_star: torch.Tensor | None = None,
    lam_star: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Relative duality gap of the prediction's certificate plus its residuals.

    Per instance, with ``x = y_pred[:, :N]``, ``lambda = y_pred[:, N:]``, the
    objective ``p = c^T x``, the Lagrangian dual objective ``d = -b^T lambda +
    sum_j min_{lb_j <= x_j <= ub_j} r_j x_j`` over the absorbable reduced costs
    ``r = c + A^T lambda`` (see :mod:`kkt_nets.duality`) and the unabsorbed
    rest ``r_free``:

    * ``gap``: ``|p - d| / (1 + |p| + |d|)`` (denominator not differentiated);
    * ``primal``: ``||relu(A x - b)||_2 / (1 + ||b||_2)``;
    * ``dual``: ``(||r_free||_2 + ||relu(-lambda)||_2) / (1 + ||c||_2)``;
    * ``supervised``: ``||x - x*|| / (1 + ||x*||) + ||lambda - lambda*|| /
      (1 + ||lambda*||)`` (only when ``supervised_weight > 0``).

    These are PDLP's termination measures, so the loss is small exactly when
    the prediction is near-optimal with a certificate. Norms (not squares)
    keep the gradients from vanishing near zero. Each term is averaged over
    the batch; padding never counts.

    Parameters
    ----------
    y_pred, A, b, c, mask_m, mask_n
        As in :func:`kkt_loss`.
    lb, ub : Tensor, optional
        ``[B, N]`` bounds (``None``: every variable free, the spec's form).
    gap_weight, primal_weight, dual_weight, supervised_weight : float
        Non-negative weights of the four terms.
    x_star, lam_star : Tensor, optional
        ``[B, N]``, ``[B, M]`` labels (required when ``supervised_weight > 0``).

    Returns
    -------
    loss : Tensor
        Scalar, the weighted sum of the batch-mean terms.
    terms : dict of str to Tensor
        ``"gap"``, ``"primal"``, ``"dual"``, ``"supervised"`` (batch means,
        detached; ``supervised`` is 0 without labels).

    Raises
    ------
    ValueError
        On shape mismatches, a negative weight, or a supervised weight
        without labels.
    """
    weights = {
        "gap": gap_weight,
        "primal": primal_weight,
        "dual": dual_weight,
        "supervised": supervised_weight,
    }
    for name, weight in weights.items():
        if not weight >= 0:
            raise ValueError(f"{name}_weight must be >= 0, got {weight!r}")
    x, lam, slack, gradient = _residuals(y_pred, A, b, c, mask_m, mask_n, lb, ub)
    dtype = x.dtype
    if lb is None:
        value, unabsorbed = torch.zeros_like(gradient), gradient
    else:
        value, unabsorbed = lagrangian_bound_terms(gradient, lb.to(dtype), ub.to(dtype))
    b, c = b.to(dtype) * mask_m, c.to(dtype) * mask_n
    primal_obj = (c * x).sum(dim=-1)
    dual_obj = -(b * lam).sum(dim=-1) + (value * mask_n).sum(dim=-1)
    scale = (1 + primal_obj.abs() + dual_obj.abs()).detach()
    terms = {
        "gap": (primal_obj - dual_obj).abs() / scale,
        "primal": _norm(torch.relu(slack)) / (1 + _norm(b)),
        "dual": (_norm(unabsorbed * mask_n) + _norm(torch.relu(-lam))) / (1 + _norm(c)),
        "supervised": torch.zeros_like(primal_obj),
    }
    if supervised_weight > 0:
        if x_star is None or lam_star is None:
            raise ValueError("supervised_weight > 0 needs the labels x_star, lam_star")
        x_star, lam_star = x_star.to(dtype) * mask_n, lam_star.to(dtype) * mask_m
        terms["supervised"] = _norm(x - x_star) / (1 + _norm(x_star)) + _norm(
            lam - lam_star
        ) / (1 + _norm(lam_star))
    means = {key: value.mean() for key, value in terms.items()}
    loss = sum(weights[key] * means[key] for key in CERTIFICATE_TERMS)
    return loss, {key: value.detach() for key, value in means.items()}
