"""Settings of the maximum-entropy builder (independent of jax_smm's own config)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_BINS = 1000


class SMMConfig(BaseModel):
    """How the builder discretizes and fits.

    Attributes
    ----------
    max_bins : int
        Bins of every continuous variable (at most ``MAX_BINS``).
    num_chains, num_iterations, mcmc_steps_per_iteration : int
        Persistent chains, optimizer steps, sweeps per step.
    learning_rate : float
        Step size.
    optimizer : {"adam", "sgd"}
    l2_regularization : float
        L2 weight on the multipliers.
    seed : int
    grad_clip : float or None
        Global-norm gradient clipping.
    logit_clip : float or None
        Bound on every multiplier, so contradictory or boundary estimates
        (probability exactly 0 or 1) keep finite log-potentials.
    average_fraction : float
        Tail averaging: the fitted model is the mean of the iterates over this
        final fraction of the iterations (0: the last iterate).
    temperature : float
        The marginals are read out from ``p^(1 / temperature)`` (1: the fitted
        model; > 1 flattens it, < 1 sharpens it).
    readout_sweeps : int
        Sweeps of every chain averaged into the reported marginals.
    tolerance : float
        An estimate is met when the fitted model states it within
        ``tolerance`` (probabilities) or ``tolerance`` times the variable's
        range (expectations); unmet estimates make the fit unconverged.
    progress : bool
        Show a progress bar while fitting.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    max_bins: int = Field(default=20, ge=1, le=MAX_BINS)
    num_chains: int = Field(default=512, ge=1)
    num_iterations: int = Field(default=1500, ge=1)
    mcmc_steps_per_iteration: int = Field(default=2, ge=1)
    learning_rate: float = Field(default=0.05, gt=0, allow_inf_nan=False)
    optimizer: Literal["adam", "sgd"] = "adam"
    l2_regularization: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    seed: int = Field(default=0, ge=0, lt=2**32)
    grad_clip: float | None = Field(default=None, gt=0)
    logit_clip: float | None = Field(default=30.0, gt=0)
    average_fraction: float = Field(default=0.25, ge=0, lt=1)
    temperature: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    readout_sweeps: int = Field(default=100, ge=1)
    tolerance: float = Field(default=0.02, gt=0, le=1, allow_inf_nan=False)
    progress: bool = True
