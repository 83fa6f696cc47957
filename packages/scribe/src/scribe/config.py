"""``FitConfig``: every setting of a fit, validated once and saved as JSON.

A fit is rebuilt from its configuration alone (the model and guide functions
come from :func:`scribe.models.presets.standard_model`), so a saved result
holds no pickled code. Bad settings raise pydantic's ``ValidationError`` (a
``ValueError``) naming the argument and what it allows.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict

SEED_LIMIT = 2**63  # JAX PRNG keys take a signed 64-bit seed


class FitConfig(BaseModel):
    """Settings of :func:`scribe.fit` (see it for their meaning).

    The first group selects the model and guide (the keyword arguments of
    :func:`~scribe.models.presets.standard_model`); the second, the SVI run.
    """

    model_config = ConfigDict(frozen=True, strict=True, extra="forbid")

    model: Literal["nbdm", "zinb", "nbvcp", "zinbvcp"] = "nbdm"
    parameterization: Literal["canonical", "linked", "odds_ratio"] = "canonical"
    guide: Literal["mean_field", "low_rank", "amortized", "vae"] = "mean_field"
    n_components: int | None = Field(default=None, ge=2)
    guide_rank: int = Field(default=8, ge=1)
    latent_dim: int = Field(default=8, ge=1)
    hidden_dims: tuple[Annotated[int, Strict(), Field(ge=1)], ...] = Field(
        default=(64,), strict=False, min_length=1
    )
    mixture_params: str | Annotated[tuple[str, ...], Field(strict=False)] = "all"
    capture_param_name: Literal["p_capture", "phi_capture"] | None = None
    global_guide: Literal["mean_field", "low_rank", "full_rank"] = "mean_field"

    n_steps: int = Field(default=5_000, ge=1)
    batch_size: int | None = Field(default=None, ge=1)
    learning_rate: float = Field(default=0.1, gt=0, allow_inf_nan=False)
    network_learning_rate: float = Field(default=0.01, gt=0, allow_inf_nan=False)
    num_particles: int = Field(default=1, ge=1)
    schedule: Literal["cosine", "constant"] = "cosine"
    seed: int = Field(default=0, ge=0, lt=SEED_LIMIT)
    layer: str | None = None

    def model_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``standard_model`` for this configuration."""
        return self.model_dump(
            include={
                "model",
                "parameterization",
                "guide",
                "n_components",
                "guide_rank",
                "latent_dim",
                "hidden_dims",
                "mixture_params",
                "capture_param_name",
                "global_guide",
            }
        )
