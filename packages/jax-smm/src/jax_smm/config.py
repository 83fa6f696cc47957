"""Settings of a stochastic-moment-matching fit, validated on construction."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from jax_smm.checks import MAX_SEED, check_choice, check_int, check_real

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("cosine", "constant")
KERNELS = ("chromatic", "sequential")
COUNTS = (
    "num_iterations",
    "num_chains",
    "mcmc_steps_per_iteration",
    "chunk_size",
)


@dataclass(frozen=True)
class SMMConfig:
    """Settings of :func:`fit_smm`.

    Attributes
    ----------
    num_iterations : int
        Optimizer steps.
    num_chains : int
        Persistent chains.
    mcmc_steps_per_iteration : int
        Sweeps of every chain per iteration; moments average over all of them.
    learning_rate : float
        Step size of the optimizer.
    optimizer : {"sgd", "adam"}
        Optimizer (from optax).
    l2_regularization : float
        Weight of ``0.5 * l2 * |theta|^2`` on the fitted parameters.
    grad_clip : float or None
        Clip the gradient to this global norm (``None``: no clipping).
    param_clip : float or None
        Keep every fitted parameter (targeted theta cells and constraint
        multipliers) in ``[-param_clip, param_clip]`` after each step; bounds the
        log-potentials when targets are contradictory or on the boundary.
    schedule : {"cosine", "constant"}
        Learning-rate schedule. Moment estimates are noisy, so a constant step
        leaves theta jittering around the solution; the cosine decay (to 1 % of
        ``learning_rate`` at the last iteration) lets it settle (Robbins-Monro).
    average_fraction : float
        Polyak-Ruppert tail averaging: the returned parameters are the mean of
        the iterates over this final fraction of the iterations (0: the last
        iterate). Averaging cancels most of the jitter the noisy moment
        estimates leave in the parameters.
    seed : int
        Seed of the chains' initial states and of every MCMC draw.
    chunk_size : int
        Iterations per jitted ``lax.scan`` chunk (one progress-bar tick each).
    kernel : {"chromatic", "sequential"}
        MCMC kernel; chromatic block Gibbs is the default.
    progress : bool
        Show a tqdm progress bar.

    Every field is checked on construction, without coercion: ``"0.1"`` is not
    a learning rate, ``2.7`` is not a number of chains and ``None`` is not a
    seed; the ``ValueError`` names the field and what it allows.
    """

    num_iterations: int = 500
    num_chains: int = 256
    mcmc_steps_per_iteration: int = 2
    learning_rate: float = 0.05
    optimizer: Literal["sgd", "adam"] = "adam"
    l2_regularization: float = 0.0
    grad_clip: float | None = None
    param_clip: float | None = None
    schedule: Literal["cosine", "constant"] = "cosine"
    average_fraction: float = 0.0
    seed: int = 0
    chunk_size: int = 25
    kernel: Literal["chromatic", "sequential"] = "chromatic"
    progress: bool = True

    def __post_init__(self) -> None:
        checked = {name: check_int(name, getattr(self, name), 1) for name in COUNTS}
        checked["learning_rate"] = check_real(
            "learning_rate", self.learning_rate, 0.0, exclusive_minimum=True
        )
        checked["l2_regularization"] = check_real(
            "l2_regularization", self.l2_regularization, 0.0
        )
        for name in ("grad_clip", "param_clip"):
            if getattr(self, name) is not None:
                checked[name] = check_real(
                    name, getattr(self, name), 0.0, exclusive_minimum=True
                )
        checked["average_fraction"] = check_real(
            "average_fraction", self.average_fraction, 0.0
        )
        if checked["average_fraction"] >= 1.0:
            raise ValueError(
                f"average_fraction must be in [0, 1), got {self.average_fraction!r}"
            )
        checked["seed"] = check_int("seed", self.seed, 0, MAX_SEED)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("schedule", self.schedule, SCHEDULES)
        check_choice("kernel", self.kernel, KERNELS)
        if not isinstance(self.progress, bool):
            raise ValueError(f"progress must be True or False, got {self.progress!r}")
        for name, value in checked.items():  # NumPy scalars become int / float
            object.__setattr__(self, name, value)

    @classmethod
    def from_dict(cls, settings: Mapping[str, Any]) -> SMMConfig:
        """Build a config from a mapping of field names to values.

        Raises
        ------
        ValueError
            Naming any unknown key (and listing the allowed ones), or a field
            whose value is not allowed.
        """
        if not isinstance(settings, Mapping):
            raise ValueError(
                f"config must be an SMMConfig or a dict, got {type(settings).__name__}"
            )
        allowed = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(str(k) for k in settings if k not in allowed)
        if unknown:
            raise ValueError(f"config has unknown keys {unknown}; allowed: {allowed}")
        return cls(**settings)

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain dict (JSON-serializable)."""
        return dataclasses.asdict(self)


def as_config(config: SMMConfig | Mapping[str, Any] | None) -> SMMConfig:
    """An :class:`SMMConfig` from a config, a dict of settings or ``None``."""
    if config is None:
        return SMMConfig()
    if isinstance(config, SMMConfig):
        return config
    return SMMConfig.from_dict(config)
