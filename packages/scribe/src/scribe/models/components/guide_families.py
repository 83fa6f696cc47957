"""Variational families a parameter's guide can use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MeanFieldGuide:
    """Independent guide distribution of the prior's family per parameter."""


@dataclass(frozen=True)
class LowRankGuide:
    """Low-rank multivariate normal over the (unconstrained) gene axis.

    Parameters
    ----------
    rank : int
        Columns of the covariance factor.
    """

    rank: int

    def __post_init__(self) -> None:
        if int(self.rank) < 1:
            raise ValueError(f"rank must be >= 1, got {self.rank!r}")


@dataclass(frozen=True)
class JointGuide:
    """One multivariate normal over every global parameter, unconstrained.

    The values of all non-cell-specific sites (``p`` or ``phi``, ``r`` or
    ``mu``, ``gate``, ``mixing_weights``...) are concatenated in the
    unconstrained space of their supports; one (low-rank or full-rank)
    multivariate normal there captures their correlations (``p`` with every
    ``r``), as numpyro's ``AutoContinuous`` guides do. Set it with
    ``GuideBuilder.with_global_guide``.

    Parameters
    ----------
    rank : int, optional
        Columns of the covariance factor; ``None`` is a full-rank
        ``scale_tril``.
    """

    rank: int | None = None

    def __post_init__(self) -> None:
        if self.rank is not None and int(self.rank) < 1:
            raise ValueError(f"rank must be None or >= 1, got {self.rank!r}")


@dataclass(frozen=True)
class AmortizedGuide:
    """A cell-specific parameter's guide parameters from a network of the counts.

    Parameters
    ----------
    amortizer : Amortizer
        Flax module mapping the sufficient statistic to the guide parameters.
    """

    amortizer: Any


@dataclass(frozen=True)
class GroupedAmortizedGuide:
    """The VAE: an encoder of the counts, a latent ``z`` and a decoder.

    Parameters
    ----------
    encoder : flax.linen.Module
        ``log1p(counts) -> {"loc", "log_scale"}`` per cell.
    latent_spec : LatentSpec
        Turns the encoder's output into the guide distribution of ``z``.
    decoder : flax.linen.Module
        ``z -> {name: raw value}`` per cell, used by the model.
    """

    encoder: Any
    latent_spec: Any
    decoder: Any
