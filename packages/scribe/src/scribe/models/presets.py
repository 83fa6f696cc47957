"""Ready-made specs for the standard models and parameterizations.

Models: ``nbdm`` (negative binomial), ``zinb`` (zero-inflated), ``nbvcp``
(variable capture probability), ``zinbvcp`` (both); each also as a
``n_components`` mixture. Parameterizations of the negative binomial:

* ``canonical``: ``p ~ Beta``, ``r ~ LogNormal`` per gene;
* ``linked``: ``p ~ Beta``, ``mu ~ LogNormal`` per gene, ``r = mu (1 - p) / p``;
* ``odds_ratio``: ``phi ~ BetaPrime``, ``mu ~ LogNormal`` per gene,
  ``r = mu phi``, ``p = 1 / (1 + phi)``;

so ``mu`` is the mean expression in the last two. Guides: ``mean_field``,
``low_rank`` (the per-gene parameter), ``amortized`` (the capture from the
cell's total count) and ``vae`` (``mu`` per cell decoded from a latent ``z``;
linked parameterization); ``global_guide`` optionally replaces the guides of
all global parameters with one joint normal.

Upstream parity (the scribe package this one follows, ``mrazomej/scribe``):

* capture: ``capture_param_name="phi_capture"`` samples the capture as an odds
  ``phi_capture ~ BetaPrime(1, 1)`` with ``p_capture = 1 / (1 + phi_capture)``
  a deterministic site; upstream does so in its odds-ratio (``mean_odds``)
  parameterization, the default here too; the others sample ``p_capture ~
  Beta(1, 1)``;
* mixtures: ``mixture_params`` names the parameters that differ between
  components, with upstream's shorthands ``"all"`` (its default since
  2026-02: ``p``/``phi``, ``r``/``mu`` and ``gate``), ``"biological"``
  (``p``/``phi`` and ``r``/``mu``), ``"mean"`` (``r``/``mu`` only, the
  previous upstream default), ``"prob"`` and ``"gate"``, or a list of names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp

from scribe.models.builders.guide_builder import (
    GuideBuilder,
    check_joint_guide,
    joint_latent_size,
)
from scribe.models.builders.model_builder import ModelBuilder, ModelConfig, model_dims
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
    JointGuide,
    LowRankGuide,
)
from scribe.models.components.likelihoods import (
    NBWithVCPLikelihood,
    NegativeBinomialLikelihood,
    ZeroInflatedNBLikelihood,
    ZINBWithVCPLikelihood,
)
from scribe.models.components.limits import (
    check_parameter_memory,
    check_rank,
    dense_parameter_count,
    positive_dims,
    positive_int,
)

LIKELIHOODS = {
    "nbdm": NegativeBinomialLikelihood,
    "zinb": ZeroInflatedNBLikelihood,
    "nbvcp": NBWithVCPLikelihood,
    "zinbvcp": ZINBWithVCPLikelihood,
}

PARAMETERIZATIONS = ("canonical", "linked", "odds_ratio")
GUIDES = ("mean_field", "low_rank", "amortized", "vae")
GLOBAL_GUIDES = ("mean_field", "low_rank", "full_rank")
CAPTURE_PARAMS = ("p_capture", "phi_capture")
MIXTURE_SHORTHANDS = ("all", "biological", "mean", "prob", "gate")


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


def sampled_names(model: str, parameterization: str) -> dict[str, tuple[str, ...]]:
    """The sampled global parameters by role: ``prob``, ``mean`` and ``gate``."""
    return {
        "prob": ("phi",) if parameterization == "odds_ratio" else ("p",),
        "mean": ("r",) if parameterization == "canonical" else ("mu",),
        "gate": ("gate",) if "zinb" in model else (),
    }


def resolve_mixture_params(
    mixture_params: str | Sequence[str], model: str, parameterization: str
) -> frozenset[str]:
    """The parameters that get one value per mixture component.

    Parameters
    ----------
    mixture_params : str or sequence of str
        A shorthand of upstream scribe's: ``"all"`` (every sampled global
        parameter), ``"biological"`` (``p``/``phi`` and ``r``/``mu``),
        ``"mean"`` (``r``/``mu``), ``"prob"`` (``p``/``phi``), ``"gate"``; or
        the names themselves.
    model, parameterization : str

    Raises
    ------
    ValueError
        For an unknown shorthand or name, ``"gate"`` without zero inflation,
        or no parameter at all.
    """
    roles = sampled_names(model, parameterization)
    allowed = roles["prob"] + roles["mean"] + roles["gate"]
    if isinstance(mixture_params, str):
        shorthands = {
            "all": allowed,
            "biological": roles["prob"] + roles["mean"],
            "mean": roles["mean"],
            "prob": roles["prob"],
            "gate": roles["gate"],
        }
        if mixture_params not in shorthands:
            raise ValueError(
                f"mixture_params must be one of {MIXTURE_SHORTHANDS} or a list of "
                f"names from {allowed}, got {mixture_params!r}"
            )
        names = shorthands[mixture_params]
    else:
        names = tuple(mixture_params)
        unknown = [n for n in names if n not in allowed]
        if unknown:
            raise ValueError(
                f"mixture_params {unknown} are not sampled global parameters of "
                f"model={model!r}, parameterization={parameterization!r}: "
                f"choose from {allowed}"
            )
    if not names:
        raise ValueError(
            f"mixture_params={mixture_params!r} leaves no parameter per component "
            f"(model={model!r} has {allowed})"
        )
    return frozenset(names)


def resolve_capture_param(
    capture_param_name: str | None, model: str, parameterization: str
) -> str | None:
    """The sampled capture site: ``p_capture``, ``phi_capture`` or ``None``.

    ``None`` as the name picks upstream's choice; a model without capture has
    none.

    Raises
    ------
    ValueError
        For another name, or a name given to a model without capture.
    """
    if "vcp" not in model:
        if capture_param_name is not None:
            raise ValueError(
                f"capture_param_name applies to nbvcp and zinbvcp, not {model!r}"
            )
        return None
    if capture_param_name is None:
        return "phi_capture" if parameterization == "odds_ratio" else "p_capture"
    if capture_param_name not in CAPTURE_PARAMS:
        raise ValueError(
            f"capture_param_name must be one of {CAPTURE_PARAMS} or None, got "
            f"{capture_param_name!r}"
        )
    return capture_param_name


def _check_choices(**choices: tuple[str, tuple[str, ...]]) -> None:
    for name, (value, allowed) in choices.items():
        if value not in allowed:
            raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


def _check_network_sizes(
    guide: str, n_genes: int | None, latent_dim: int, hidden_dims: tuple[int, ...]
) -> None:
    """Refuse amortizer or VAE networks whose parameters cannot fit."""
    if guide == "amortized":
        n_params = dense_parameter_count(1, hidden_dims, 2)
        what = f"guide='amortized' with hidden_dims={hidden_dims}"
    elif guide == "vae":
        n_params = dense_parameter_count(
            n_genes, hidden_dims, 2 * latent_dim
        ) + dense_parameter_count(latent_dim, hidden_dims, n_genes)
        what = (
            f"guide='vae' with hidden_dims={hidden_dims}, latent_dim={latent_dim} "
            f"and n_genes={n_genes}"
        )
    else:
        return
    check_parameter_memory(n_params, what, "use smaller hidden_dims or latent_dim")


def _check_guide_sizes(
    specs: list[ParamSpec],
    guide: str,
    joint: JointGuide | None,
    guide_rank: int,
    n_genes: int,
    n_components: int | None,
) -> None:
    """Refuse ranks outside their range and covariances that cannot fit."""
    dims = model_dims(1, n_genes, ModelConfig(n_components=n_components))
    if guide == "low_rank":
        check_rank("guide_rank", guide_rank, n_genes, n_components or 1)
    if joint is not None:
        global_specs = [s for s in specs if not s.is_cell_specific]
        check_joint_guide(joint, joint_latent_size(global_specs, dims))


def _capture_spec(
    name: str, guide: str, hidden_dims: tuple[int, ...]
) -> tuple[ParamSpec, list[tuple[str, Any, list[str]]]]:
    """The capture spec and, for ``phi_capture``, the derived ``p_capture``.

    ``p_capture ~ Beta(1, 1)``, or ``phi_capture ~ BetaPrime(1, 1)`` with
    ``p_capture = 1 / (1 + phi_capture)`` (the same prior on ``p_capture``).
    """
    family = None
    if guide == "amortized":
        family = AmortizedGuide(
            amortizer=Amortizer(
                sufficient_statistic=TOTAL_COUNT,
                hidden_dims=hidden_dims,
                output_params=("alpha", "beta"),
            )
        )
    spec_type = BetaPrimeSpec if name == "phi_capture" else BetaSpec
    spec = spec_type(
        name, ("n_cells",), (1.0, 1.0), is_cell_specific=True, guide_family=family
    )
    derived = [("p_capture", odds_ratio_p, [name])] if name == "phi_capture" else []
    return spec, derived


def standard_model(
    model: str = "nbdm",
    parameterization: str = "canonical",
    guide: str = "mean_field",
    n_components: int | None = None,
    n_genes: int | None = None,
    guide_rank: int = 8,
    latent_dim: int = 8,
    hidden_dims: Sequence[int] = (64,),
    *,
    mixture_params: str | Sequence[str] = "all",
    capture_param_name: str | None = None,
    global_guide: str = "mean_field",
) -> tuple[Any, Any, list[ParamSpec]]:
    """Model, guide and specs of a standard model.

    Parameters
    ----------
    model : {"nbdm", "zinb", "nbvcp", "zinbvcp"}
    parameterization : {"canonical", "linked", "odds_ratio"}
    guide : {"mean_field", "low_rank", "amortized", "vae"}
    n_components : int, optional
        Mixture components (``mixing_weights ~ Dirichlet(1)``).
    n_genes : int, optional
        Needed by the VAE decoder; when given, sizes are checked here rather
        than when the guide first runs.
    guide_rank : int
        Rank of the low-rank guides, in ``[1, n_genes]`` for
        ``guide="low_rank"`` and in ``[1, dimension]`` for
        ``global_guide="low_rank"``.
    latent_dim : int
        Dimension of the VAE's latent.
    hidden_dims : sequence of int
        Hidden layer widths of the amortizer and the VAE's networks.
    mixture_params : str or sequence of str
        Mixtures: the parameters with one value per component (see
        :func:`resolve_mixture_params`); default ``"all"``, as upstream.
    capture_param_name : {"p_capture", "phi_capture"}, optional
        Capture models: sample ``p_capture ~ Beta(1, 1)``, or the odds
        ``phi_capture ~ BetaPrime(1, 1)`` with ``p_capture = 1 / (1 +
        phi_capture)`` deterministic. Default (``None``): ``phi_capture`` for
        ``odds_ratio``, ``p_capture`` otherwise, as upstream.
    global_guide : {"mean_field", "low_rank", "full_rank"}
        ``mean_field``: each global parameter its own family. ``low_rank`` /
        ``full_rank``: one multivariate normal over the unconstrained values
        of every global parameter (:class:`JointGuide`, rank ``guide_rank``
        or full), which captures their correlations (``p`` with every ``r``);
        cell-level parameters keep their guide.

    Returns
    -------
    model, guide : callable
    specs : list of ParamSpec

    Raises
    ------
    ValueError
        For an unknown name, an unsupported combination, a rank outside its
        range, or guide parameters that cannot fit in memory (the message
        names the argument and the estimate).
    TypeError
        For ``guide_rank`` or ``latent_dim`` that is not an int, or
        ``hidden_dims`` that is not a sequence of ints.
    """
    _check_choices(
        model=(model, tuple(LIKELIHOODS)),
        parameterization=(parameterization, PARAMETERIZATIONS),
        guide=(guide, GUIDES),
        global_guide=(global_guide, GLOBAL_GUIDES),
    )
    guide_rank = positive_int("guide_rank", guide_rank)
    latent_dim = positive_int("latent_dim", latent_dim)
    hidden_dims = positive_dims("hidden_dims", hidden_dims)
    mixture = n_components is not None
    if guide == "amortized" and "vcp" not in model:
        raise ValueError(
            "guide='amortized' amortizes the capture: use nbvcp or zinbvcp"
        )
    if guide == "vae" and (parameterization != "linked" or mixture or n_genes is None):
        raise ValueError(
            "guide='vae' decodes mu per cell: needs parameterization='linked', "
            "no mixture, and n_genes"
        )
    if guide == "low_rank" and global_guide != "mean_field":
        raise ValueError(
            f"global_guide={global_guide!r} already covers the per-gene "
            "parameters jointly: combine it with guide='mean_field', "
            "'amortized' or 'vae', not guide='low_rank'"
        )
    split = (
        resolve_mixture_params(mixture_params, model, parameterization)
        if mixture
        else frozenset()
    )
    capture = resolve_capture_param(capture_param_name, model, parameterization)
    _check_network_sizes(guide, n_genes, latent_dim, hidden_dims)
    gene_family = LowRankGuide(rank=guide_rank) if guide == "low_rank" else None
    roles = sampled_names(model, parameterization)
    specs: list[ParamSpec] = []
    derived: list[tuple[str, Any, list[str]]] = []
    if parameterization == "odds_ratio":
        specs.append(BetaPrimeSpec("phi", (), (1.0, 1.0), is_mixture="phi" in split))
        derived += [("p", odds_ratio_p, ["phi"]), ("r", odds_ratio_r, ["phi", "mu"])]
    else:
        specs.append(BetaSpec("p", (), (1.0, 1.0), is_mixture="p" in split))
    (gene_name,) = roles["mean"]
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
                gene_name,
                ("n_genes",),
                (0.0, 1.0),
                guide_family=gene_family,
                is_mixture=gene_name in split,
            )
        )
    if parameterization == "linked":
        derived.append(("r", linked_r, ["p", "mu"]))
    if roles["gate"]:
        specs.append(
            BetaSpec("gate", ("n_genes",), (1.0, 9.0), is_mixture="gate" in split)
        )
    if capture is not None:
        capture_spec, capture_derived = _capture_spec(capture, guide, hidden_dims)
        specs.append(capture_spec)
        derived += capture_derived
    if mixture:
        specs.append(DirichletSpec("mixing_weights", ("n_components",), (1.0,)))
    joint = None
    if global_guide != "mean_field":
        joint = JointGuide(rank=guide_rank if global_guide == "low_rank" else None)
    if n_genes is not None:
        _check_guide_sizes(specs, guide, joint, guide_rank, n_genes, n_components)
    builder = ModelBuilder()
    for spec in specs:
        builder.add_param(spec)
    for name, fn, deps in derived:
        builder.add_derived(name, fn, deps)
    built = builder.with_likelihood(LIKELIHOODS[model]()).build()
    guide_fn = GuideBuilder().from_specs(specs).with_global_guide(joint).build()
    return built, guide_fn, specs
