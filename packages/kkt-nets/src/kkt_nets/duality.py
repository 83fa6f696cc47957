r"""Closed-form bound duals and the Lagrangian dual bound of a box-bounded LP.

For ``min c^T x  s.t.  A x <= b,  lb <= x <= ub`` and row duals ``lambda >=
0``, the reduced costs are ``r = c + A^T lambda`` and the Lagrangian dual
function is

.. math::

    g(\lambda) = -b^T \lambda + \sum_j \min_{lb_j \le x_j \le ub_j} r_j x_j
              = -b^T \lambda + \sum_j (\mathrm{relu}(r_j)\, lb_j
                - \mathrm{relu}(-r_j)\, ub_j),

a lower bound on the optimum for *every* ``lambda >= 0`` (weak duality). The
bound duals that complete ``lambda`` are ``lambda_lb = relu(r)`` where ``lb``
is finite and ``lambda_ub = relu(-r)`` where ``ub`` is finite; with them
stationarity ``c + A^T lambda - lambda_lb + lambda_ub = 0`` holds exactly on
every component a finite bound can absorb. What is left (``r_j`` of a free
direction) is the *unabsorbed* reduced cost: the dual residual, and where it
is not zero the bound is ``-inf``.

These functions are elementwise over any layout (one LP, a padded batch, the
flat vectors of a batched solver) so the loss, the PDHG solver and the
evaluation share them; infinite bounds never meet a zero (no NaN values or
gradients).
"""

from __future__ import annotations

import torch


def finite_or_zero(bound: torch.Tensor) -> torch.Tensor:
    """``bound`` with infinite entries replaced by zero."""
    return torch.where(torch.isfinite(bound), bound, torch.zeros_like(bound))


def complete_bound_duals(
    r: torch.Tensor, lb: torch.Tensor, ub: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Duals of the bounds from the reduced costs ``r = c + A^T lambda``.

    Parameters
    ----------
    r : Tensor
        Reduced costs, any shape.
    lb, ub : Tensor
        Bounds of the same shape (``-inf`` / ``inf`` where absent).

    Returns
    -------
    lam_lb : Tensor
        ``relu(r)`` where ``lb`` is finite, else 0.
    lam_ub : Tensor
        ``relu(-r)`` where ``ub`` is finite, else 0.
    """
    zero = torch.zeros_like(r)
    lam_lb = torch.where(torch.isfinite(lb), torch.relu(r), zero)
    lam_ub = torch.where(torch.isfinite(ub), torch.relu(-r), zero)
    return lam_lb, lam_ub


def lagrangian_bound_terms(
    r: torch.Tensor, lb: torch.Tensor, ub: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-variable terms of the Lagrangian bound and the unabsorbed reduced costs.

    Parameters
    ----------
    r : Tensor
        Reduced costs ``c + A^T lambda``.
    lb, ub : Tensor
        Bounds of the same shape.

    Returns
    -------
    value : Tensor
        ``lambda_lb lb - lambda_ub ub`` (finite; ``min_x r_j x_j`` over the box
        where that minimum is finite).
    unabsorbed : Tensor
        ``r - lambda_lb + lambda_ub``: zero exactly where a finite bound
        absorbs ``r_j``; elsewhere the dual residual (the bound is ``-inf``
        unless it is zero).
    """
    lam_lb, lam_ub = complete_bound_duals(r, lb, ub)
    value = lam_lb * finite_or_zero(lb) - lam_ub * finite_or_zero(ub)
    return value, r - lam_lb + lam_ub
