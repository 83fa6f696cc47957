"""Ready-made specs for the standard models and parameterizations.

Models: ``nbdm`` (negative binomial), ``zinb`` (zero-inflated), ``nbvcp``
(variable capture probability), ``zinbvcp`` (both); each also as a
``n_components`` mixture. Parameterizations of the negative binomial:

* ``canonical``: ``p ~ Beta``, ``r ~ LogNormal`` per gene;
* ``linked``: ``p ~ Beta``, ``mu ~ LogNormal`` per gene, ``r = mu (1 - p) / p``;
* ``odds_ratio``: ``phi ~ BetaPrime``, ``mu ~ LogNormal`` per gene,
  ``r = mu phi``, ``p = 1 / (1 + phi)``;

so ``mu`` is the mean expression in the last two. Guides: ``mean_field``,
``low_rank`` (the per-gene parameter), ``amortized`` (``p_capture`` from the
cell's total count) and ``vae`` (``mu`` per cell decoded from a latent ``z``;
linked parameterization).
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from scribe.models.builders.guide_builder import GuideBuilder
from scribe.models.builders.model_builder import ModelBuilder
from scribe.models.builders.parameter_specs import (
    BetaPrimeSpec,
    BetaSpec,
    DirichletSpec,
    GaussianLatentSpec,
    LogNormalSpec,
    ParamSpec,
)
from scribe.models.components.amortizers import TOTAL_COUNT, Amortizer, Decoder, Encoder
from scribe.models.components.guide_families import (
    AmortizedGuide,
    GroupedAmortizedGuide,
    LowRankGuide,
)
from scribe.models.components.likelihoods import (
    NBWithVCPLikelihood,
    NegativeBinomialLikelihood,
    ZeroInflatedNBLikelihood,
    ZINBWithVCPLikelihood,
)

LIKELIHOODS = {
    "nbdm": NegativeBinomialLikelihood,
    "zinb": ZeroInflatedNBLikelihood,
    "nbvcp": NBWithVCPLikelihood,
    "zinbvcp": ZINBWithVCPLikelihood,
}
PARAMETERIZATIONS = ("canonical", "linked", "odds_ratio")
GUIDES = ("mean_field", "low_rank", "amortized", "vae")


def _per_gene(p: Any) -> Any:
    """``p`` (scalar or per component) against per-gene ``[..., genes]`` arrays."""
    p = jnp.asarray(p)
    return p[..., None] if p.ndim else p


def linked_r(p: Any, mu: Any) -> Any:
    """``r = mu (1 - p) / p``: the dispersion giving mean ``mu``."""
    p = _per_gene(p)
    return mu * (1.0 - p) / p


def odds_ratio_r(phi: Any, mu: Any) -> Any:
    """``r = mu phi``."""
    return mu * _per_gene(phi)


def odds_ratio_p(phi: Any) -> Any:
    """``p = 1 / (1 + phi)``."""
    return 1.0 / (1.0 + phi)


def standard_model(
    model: str = "nbdm",
    parameterization: str = "canonical",
    guide: str = "mean_field",
    n_components: int | None = None,
    n_genes: int | None = None,
    guide_rank: int = 8,
    latent_dim: int = 8,
    hidden_dims: tuple[int, ...] = (64,),
) -> tuple[Any, Any, list[ParamSpec]]:
    """Model, guide and specs of a standard model.

    Parameters
    ----------
    model : {"nbdm", "zinb", "nbvcp", "zinbvcp"}
    parameterization : {"canonical", "linked", "odds_ratio"}
    guide : {"mean_field", "low_rank", "amortized", "vae"}
    n_components : int, optional
        Mixture components (gene parameters, ``p``/``phi`` and ``gate`` get one
        value per component; ``mixing_weights ~ Dirichlet(1)``).
    n_genes : int, optional
        Needed by the VAE decoder.
    guide_rank, latent_dim, hidden_dims
        Sizes of the low-rank, VAE and amortizer guides.

    Returns
    -------
    model, guide : callable
    specs : list of ParamSpec

    Raises
    ------
    ValueError
        For an unknown name or an unsupported combination.
    """
    for name, value, allowed in (
        ("model", model, tuple(LIKELIHOODS)),
        ("parameterization", parameterization, PARAMETERIZATIONS),
        ("guide", guide, GUIDES),
    ):
        if value not in allowed:
            raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    mixture = n_components is not None
    if guide == "amortized" and "vcp" not in model:
        raise ValueError("guide='amortized' amortizes p_capture: use nbvcp or zinbvcp")
    if guide == "vae" and (parameterization != "linked" or mixture or n_genes is None):
        raise ValueError(
            "guide='vae' decodes mu per cell: needs parameterization='linked', "
            "no mixture, and n_genes"
        )
    gene_family = LowRankGuide(rank=guide_rank) if guide == "low_rank" else None
    gene = {"is_gene_specific": True, "is_mixture": mixture}
    specs: list[ParamSpec] = []
    derived: list[tuple[str, Any, list[str]]] = []
    if parameterization == "odds_ratio":
        specs.append(BetaPrimeSpec("phi", (), (1.0, 1.0), is_mixture=mixture))
        derived += [("p", odds_ratio_p, ["phi"]), ("r", odds_ratio_r, ["phi", "mu"])]
    else:
        specs.append(BetaSpec("p", (), (1.0, 1.0), is_mixture=mixture))
    gene_name = "r" if parameterization == "canonical" else "mu"
    if guide == "vae":
        family = GroupedAmortizedGuide(
            encoder=Encoder(latent_dim=latent_dim, hidden_dims=hidden_dims),
            latent_spec=GaussianLatentSpec(latent_dim=latent_dim),
            decoder=Decoder(
                n_genes=n_genes, output_params=("mu",), hidden_dims=hidden_dims
            ),
        )
        specs.append(
            LogNormalSpec(
                "mu",
                ("n_cells", "n_genes"),
                (0.0, 1.0),
                is_cell_specific=True,
                guide_family=family,
            )
        )
    else:
        specs.append(
            LogNormalSpec(
                gene_name, ("n_genes",), (0.0, 1.0), guide_family=gene_family, **gene
            )
        )
    if parameterization == "linked":
        derived.append(("r", linked_r, ["p", "mu"]))
    if "zinb" in model:
        specs.append(BetaSpec("gate", ("n_genes",), (1.0, 9.0), **gene))
    if "vcp" in model:
        family = None
        if guide == "amortized":
            family = AmortizedGuide(
                amortizer=Amortizer(
                    sufficient_statistic=TOTAL_COUNT,
                    hidden_dims=hidden_dims,
                    output_params=("alpha", "beta"),
                )
            )
        specs.append(
            BetaSpec(
                "p_capture",
                ("n_cells",),
                (1.0, 1.0),
                is_cell_specific=True,
                guide_family=family,
            )
        )
    if mixture:
        specs.append(DirichletSpec("mixing_weights", ("n_components",), (1.0,)))
    builder = ModelBuilder()
    for spec in specs:
        builder.add_param(spec)
    for name, fn, deps in derived:
        builder.add_derived(name, fn, deps)
    built = builder.with_likelihood(LIKELIHOODS[model]()).build()
    return built, GuideBuilder().from_specs(specs).build(), specs
