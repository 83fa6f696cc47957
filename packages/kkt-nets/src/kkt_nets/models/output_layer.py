"""Output layers shared by both networks: bounded primal, non-negative dual.

:func:`bounded_primal` maps an unconstrained score ``z`` into the variable's
box, so every prediction satisfies its bounds by construction (the bounds
need not be rows of ``A``):

* both bounds finite: ``x = lb + (ub - lb) sigmoid(z)``;
* only ``lb`` finite: ``x = lb + softplus(z)``;
* only ``ub`` finite: ``x = ub - softplus(-z)``;
* free: ``x = z``.

:func:`dual_output` makes row duals non-negative with a softplus. Infinite
bounds never enter an arithmetic expression (no NaN values or gradients).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.functional import softplus

from kkt_nets.duality import finite_or_zero


def bounded_primal(
    z: torch.Tensor, lb: torch.Tensor | None = None, ub: torch.Tensor | None = None
) -> torch.Tensor:
    """Map scores ``z`` into ``[lb, ub]`` elementwise (see the module doc).

    Parameters
    ----------
    z : Tensor
        Unconstrained scores, any shape.
    lb, ub : Tensor, optional
        Bounds broadcastable to ``z`` (``-inf`` / ``inf`` where absent);
        ``None`` means no bound on that side for every variable.

    Returns
    -------
    Tensor
        ``x`` with ``lb <= x <= ub`` (equal to ``z`` where both are infinite).
    """
    if lb is None and ub is None:
        return z
    lb = torch.full_like(z, -torch.inf) if lb is None else lb.to(z.dtype)
    ub = torch.full_like(z, torch.inf) if ub is None else ub.to(z.dtype)
    has_lb, has_ub = torch.isfinite(lb), torch.isfinite(ub)
    low, high = finite_or_zero(lb), finite_or_zero(ub)
    boxed = low + (high - low) * torch.sigmoid(z)
    above = low + softplus(z)
    below = high - softplus(-z)
    one_sided = torch.where(has_lb, above, below)
    return torch.where(
        has_lb & has_ub, boxed, torch.where(has_lb | has_ub, one_sided, z)
    )


def dual_output(z: torch.Tensor) -> torch.Tensor:
    """Non-negative row duals ``softplus(z)``."""
    return softplus(z)


class FeatureNormalizer(nn.Module):
    """Standardize input features with statistics of the training set.

    ``(features - mean) / std`` per feature; ``mean`` and ``std`` are buffers
    (saved with the model), set once by :meth:`fit` before training (identity
    until then). Features that are constant in the training set keep ``std =
    1``.

    Parameters
    ----------
    num_features : int
    """

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(num_features))
        self.register_buffer("std", torch.ones(num_features))

    @torch.no_grad()
    def fit(self, features: torch.Tensor) -> None:
        """Set ``mean`` and ``std`` from ``features [K, num_features]``.

        Raises
        ------
        ValueError
            If ``features`` has the wrong width, no rows or non-finite values.
        """
        if features.ndim != 2 or features.shape[1] != self.mean.numel():
            raise ValueError(
                f"features must be [K, {self.mean.numel()}], got "
                f"{tuple(features.shape)}"
            )
        if features.shape[0] == 0 or not bool(torch.isfinite(features).all()):
            raise ValueError("features must be non-empty and finite")
        std = features.std(dim=0, unbiased=False)
        self.mean.copy_(features.mean(dim=0))
        self.std.copy_(torch.where(std > 1e-6, std, torch.ones_like(std)))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Standardized ``features``."""
        return (features - self.mean) / self.std

    def extra_repr(self) -> str:
        """``num_features``."""
        return str(self.mean.numel())
