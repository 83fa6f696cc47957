"""``GuideBuilder`` and the ``setup_guide`` dispatch.

``setup_guide(spec, family, dims, model_config, **kwargs)`` samples one spec's
guide site; it is a ``multipledispatch`` function on (spec type, guide family,
dims, model_config), so a new combination registers from user code::

    @setup_guide.register(MySpec, MeanFieldGuide, dict, object)
    def _(spec, family, dims, model_config, **kwargs): ...

Rules shipped here:

* mean field, any spec: the prior's family with learnable parameters
  (``{name}_{param}``), per cell for cell-specific specs;
* low rank, normal-based specs (``LogNormalSpec`` and the transformed normals):
  a low-rank multivariate normal over the last (gene) axis, pushed through the
  spec's transform;
* amortized, cell-specific specs: a Flax amortizer of a sufficient statistic of
  the cell's counts gives the guide's parameters.

``GuideBuilder.with_global_guide(JointGuide(rank))`` replaces the per-spec
rules of every global (non-cell-specific) spec with one multivariate normal
over their concatenated unconstrained values (:func:`sample_joint_guide`).

The VAE (``GroupedAmortizedGuide``) is handled by the builder itself: the
encoder of the counts gives the latent's guide, and the decoded parameters are
deterministic in the model, so they have no guide site.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from multipledispatch import dispatch
from numpyro.contrib.module import flax_module
from numpyro.distributions import constraints
from numpyro.distributions.transforms import ExpTransform, biject_to

from scribe.models.builders.model_builder import (
    ModelConfig,
    batch_rows,
    cell_plate,
    check_counts,
    latent_groups,
    model_dims,
)
from scribe.models.builders.parameter_specs import (
    BetaPrimeSpec,
    BetaSpec,
    DirichletSpec,
    LogNormalSpec,
    ParamSpec,
    TransformedNormalSpec,
)
from scribe.models.components.guide_families import (
    AmortizedGuide,
    JointGuide,
    LowRankGuide,
    MeanFieldGuide,
)
from scribe.models.components.limits import check_full_rank, check_rank

GUIDE_SCALE = 0.1  # initial scale of guides in unconstrained space
POSITIVE_FLOOR = 1e-4
SOFTPLUS_ONE = math.log(math.e - 1.0)  # softplus(SOFTPLUS_ONE) = 1
JOINT_SITE = "_global_latent"  # the joint guide's auxiliary site
JOINT_PREFIX = "global"  # the joint guide's parameters: global_loc, ...


def guide_init(spec: ParamSpec) -> tuple[float, ...]:
    """Initial guide parameters: ``spec.guide``, else from the prior's.

    Guides start centered on the prior but narrower, about ``GUIDE_SCALE`` wide
    in unconstrained space: a guide as wide as a vague prior makes the first
    SVI steps very noisy, and its early, huge gradients stay in Adam's
    second-moment average for thousands of steps and stall the contraction to
    a tight posterior. Normal families (``loc``, ``scale``) start at scale
    ``min(scale, GUIDE_SCALE)``; Beta and beta prime families at the prior's
    mean ``m = a / (a + b)`` with concentration ``max(a + b, 1 / (GUIDE_SCALE^2
    m (1 - m)))``, whose logit (log-odds for beta prime) has standard
    deviation about ``GUIDE_SCALE``.
    """
    if spec.guide is not None:
        return spec.guide
    params = spec.prior_params
    if spec.param_names == ("loc", "scale"):
        return (params[0], min(params[1], GUIDE_SCALE))
    if isinstance(spec, BetaSpec | BetaPrimeSpec):
        a, b = params
        mean = a / (a + b)
        concentration = max(a + b, 1.0 / (GUIDE_SCALE**2 * mean * (1.0 - mean)))
        return (mean * concentration, (1.0 - mean) * concentration)
    return params


def _param_constraint(spec: ParamSpec, i: int) -> constraints.Constraint:
    return constraints.positive if i in spec.positive_params else constraints.real


def _cell_param(
    name: str, init: Any, shape: tuple[int, ...], constraint: Any, kwargs: dict
) -> Any:
    """A guide parameter; per cell (indexed by the plate) for cell-specific sites."""
    index = kwargs.get("index")
    n_cells = kwargs.get("n_cells")
    if index is None:
        return numpyro.param(name, jnp.full(shape, init), constraint=constraint)
    full = numpyro.param(name, jnp.full((n_cells, *shape), init), constraint=constraint)
    return full[index]


@dispatch(ParamSpec, MeanFieldGuide, dict, object)
def setup_guide(
    spec: ParamSpec, family: MeanFieldGuide, dims: dict, model_config: Any, **kwargs
) -> Any:
    """Mean field: the prior's family with learnable parameters."""
    shape = spec.resolve_shape(dims, inside_cell_plate=spec.is_cell_specific)
    params = [
        _cell_param(
            f"{spec.name}_{pname}", value, shape, _param_constraint(spec, i), kwargs
        )
        for i, (pname, value) in enumerate(
            zip(spec.param_names, guide_init(spec), strict=True)
        )
    ]
    # per cell, the plate's axis leads the parameters' shape
    return numpyro.sample(spec.name, spec.make_dist(*params).to_event(len(shape)))


@dispatch((BetaSpec, BetaPrimeSpec), MeanFieldGuide, dict, object)
def setup_guide(  # noqa: F811
    spec: ParamSpec, family: MeanFieldGuide, dims: dict, model_config: Any, **kwargs
) -> Any:
    """Mean field Beta or beta prime, learnt as a mean and a concentration.

    ``alpha = m kappa``, ``beta = (1 - m) kappa`` with ``{name}_mean`` ``m`` in
    (0, 1) and ``{name}_concentration`` ``kappa > 0``. Adam on ``(m, kappa)``
    moves the location and the width separately; on ``(alpha, beta)`` the width
    of a tight posterior (``p`` of 400k counts) contracted about 4x more slowly.
    """
    shape = spec.resolve_shape(dims, inside_cell_plate=spec.is_cell_specific)
    alpha0, beta0 = guide_init(spec)
    mean = _cell_param(
        f"{spec.name}_mean",
        alpha0 / (alpha0 + beta0),
        shape,
        constraints.unit_interval,
        kwargs,
    )
    concentration = _cell_param(
        f"{spec.name}_concentration",
        alpha0 + beta0,
        shape,
        constraints.positive,
        kwargs,
    )
    fitted = spec.make_dist(mean * concentration, (1.0 - mean) * concentration)
    return numpyro.sample(spec.name, fitted.to_event(len(shape)))


@dispatch(DirichletSpec, MeanFieldGuide, dict, object)
def setup_guide(  # noqa: F811
    spec: DirichletSpec, family: MeanFieldGuide, dims: dict, model_config: Any, **kwargs
) -> Any:
    """Mean field Dirichlet with a learnable concentration vector."""
    shape = spec.resolve_shape(dims, inside_cell_plate=spec.is_cell_specific)
    alpha0 = spec.concentration(dims)
    alpha = numpyro.param(
        f"{spec.name}_concentration",
        jnp.broadcast_to(alpha0, (*shape, alpha0.size)),
        constraint=constraints.positive,
    )
    return numpyro.sample(spec.name, dist.Dirichlet(alpha).to_event(len(shape)))


def _low_rank(spec: ParamSpec, family: LowRankGuide, dims: dict, transform: Any) -> Any:
    """Low-rank MVN over the last axis, through ``transform``."""
    if spec.is_cell_specific:
        raise ValueError(f"{spec.name}: LowRankGuide is for global parameters")
    shape = spec.resolve_shape(dims)
    if not shape:
        raise ValueError(f"{spec.name}: LowRankGuide needs a vector parameter")
    check_rank(
        f"{spec.name}: LowRankGuide rank",
        int(family.rank),
        shape[-1],
        math.prod(shape[:-1]),
    )
    loc0, scale0 = guide_init(spec)
    loc = numpyro.param(f"{spec.name}_loc", jnp.full(shape, loc0))
    factor = numpyro.param(
        f"{spec.name}_cov_factor", jnp.full((*shape, family.rank), 0.01)
    )
    diag = numpyro.param(
        f"{spec.name}_cov_diag",
        jnp.full(shape, scale0**2),
        constraint=constraints.positive,
    )
    base = dist.LowRankMultivariateNormal(loc, factor, diag)
    site = dist.TransformedDistribution(base, transform)
    return numpyro.sample(spec.name, site.to_event(len(shape) - 1))


@dispatch(LogNormalSpec, LowRankGuide, dict, object)
def setup_guide(  # noqa: F811
    spec: LogNormalSpec, family: LowRankGuide, dims: dict, model_config: Any, **kwargs
) -> Any:
    """Low-rank guide of ``log`` of a log-normal parameter."""
    return _low_rank(spec, family, dims, ExpTransform())


@dispatch(TransformedNormalSpec, LowRankGuide, dict, object)
def setup_guide(  # noqa: F811
    spec: TransformedNormalSpec,
    family: LowRankGuide,
    dims: dict,
    model_config: Any,
    **kwargs,
) -> Any:
    """Low-rank guide of the normal before the spec's transform."""
    return _low_rank(spec, family, dims, spec.transform)


def amortized_params(spec: ParamSpec, outputs: dict[str, Any]) -> list[Any]:
    """The guide's parameters from an amortizer's raw outputs.

    A zero output gives the spec's initial guide parameters
    (:func:`guide_init`): a real parameter is ``init + raw``, a positive one
    ``init * softplus(raw + SOFTPLUS_ONE) + POSITIVE_FLOOR``. With the
    amortizer's zero-initialized output layers, every cell's guide starts at
    the mean-field guide's initial values, whatever its library size.
    """
    params = []
    for i, (pname, init) in enumerate(
        zip(spec.param_names, guide_init(spec), strict=True)
    ):
        raw = outputs[pname]
        if i in spec.positive_params:
            scale = jnp.logaddexp(raw + SOFTPLUS_ONE, 0.0)
            params.append(init * scale + POSITIVE_FLOOR)
        else:
            params.append(init + raw)
    return params


@dispatch(ParamSpec, AmortizedGuide, dict, object)
def setup_guide(  # noqa: F811
    spec: ParamSpec, family: AmortizedGuide, dims: dict, model_config: Any, **kwargs
) -> Any:
    """Amortized: the network's outputs give the guide's parameters.

    Needs ``network`` (the registered amortizer) and ``counts`` (this batch's
    rows) in ``kwargs``; see :func:`amortized_params` for the output map.
    """
    outputs = kwargs["network"](family.amortizer.sufficient_statistic(kwargs["counts"]))
    return numpyro.sample(spec.name, spec.make_dist(*amortized_params(spec, outputs)))


@dispatch(object, object, dict, object)
def setup_guide(spec: Any, family: Any, dims: dict, model_config: Any, **kwargs) -> Any:  # noqa: F811
    """No rule for this pair: say which."""
    raise TypeError(
        f"no guide rule for {type(spec).__name__} with {type(family).__name__}; "
        "register one with @setup_guide.register(SpecType, FamilyType, dict, object)"
    )


def _central_value(spec: ParamSpec, dims: dict) -> jnp.ndarray:
    """The center of a global spec's initial guide, in the site's full shape.

    The base distribution's mean pushed through the spec's transforms (the
    median of a log-normal, the odds of the Beta mean for a beta prime); for a
    Dirichlet, the normalized concentration.
    """
    shape = spec.resolve_shape(dims)
    if isinstance(spec, DirichletSpec):
        alpha = spec.concentration(dims)
        return jnp.broadcast_to(alpha / jnp.sum(alpha), (*shape, alpha.size))
    initial = spec.make_dist(*guide_init(spec))
    transforms = []
    if isinstance(initial, dist.TransformedDistribution):
        initial, transforms = initial.base_dist, initial.transforms
    value = initial.mean
    for transform in transforms:
        value = transform(value)
    return jnp.broadcast_to(value, shape)


def _joint_blocks(
    specs: Sequence[ParamSpec], dims: dict
) -> list[tuple[ParamSpec, Any, jnp.ndarray]]:
    """Per spec: the bijection to its support and its unconstrained initial value."""
    blocks = []
    for spec in specs:
        transform = biject_to(spec.support)
        blocks.append((spec, transform, transform.inv(_central_value(spec, dims))))
    return blocks


def joint_latent_size(specs: Sequence[ParamSpec], dims: dict) -> int:
    """Dimension of the joint guide's normal: the specs' unconstrained sizes."""
    return sum(int(u.size) for _, _, u in _joint_blocks(specs, dims))


def check_joint_guide(family: JointGuide, size: int) -> None:
    """Refuse a joint guide whose covariance parameters would not fit.

    Raises
    ------
    ValueError
        A low rank outside ``[1, size]``, or a full-rank ``scale_tril`` over
        the memory limit (the message advises the low-rank guide).
    """
    if family.rank is None:
        check_full_rank("global_guide", size)
    else:
        check_rank("guide_rank (the JointGuide rank)", int(family.rank), size)


def _joint_normal(loc: jnp.ndarray, family: JointGuide) -> dist.Distribution:
    """The joint guide's normal: ``scale`` times a unit-diagonal factor.

    Full rank: ``scale_tril = diag(scale) (I + tril(W, -1) / sqrt(size))``;
    low rank: covariance ``diag(scale) (F F^T / rank + I) diag(scale)``. The
    factors ``W`` (``global_tril``) and ``F`` (``global_cov_factor``) start at
    zero and are divided by the square root of their width, so one Adam step
    of size ``lr`` on every entry changes a row's variance by about ``lr^2``
    times its scale squared, not ``size`` times that (a full-rank guide of 201
    values diverged within 120 steps at ``lr = 0.1`` otherwise).
    """
    size = loc.shape[0]
    scale = numpyro.param(
        f"{JOINT_PREFIX}_scale",
        jnp.full(size, GUIDE_SCALE),
        constraint=constraints.softplus_positive,
    )
    if family.rank is None:
        tril = numpyro.param(f"{JOINT_PREFIX}_tril", jnp.zeros((size, size)))
        unit = jnp.identity(size) + jnp.tril(tril, -1) / math.sqrt(size)
        return dist.MultivariateNormal(loc, scale_tril=scale[:, None] * unit)
    rank = int(family.rank)
    factor = numpyro.param(f"{JOINT_PREFIX}_cov_factor", jnp.zeros((size, rank)))
    return dist.LowRankMultivariateNormal(
        loc, factor * (scale[:, None] / math.sqrt(rank)), scale**2
    )


def sample_joint_guide(
    specs: Sequence[ParamSpec], family: JointGuide, dims: dict
) -> None:
    """One multivariate normal over the unconstrained values of ``specs``.

    As numpyro's ``AutoContinuous``: the auxiliary site ``_global_latent``
    (``infer={"is_auxiliary": True}``) draws the concatenated unconstrained
    values; each spec's slice goes through ``biject_to(spec.support)`` into a
    ``Delta`` site whose log density is minus the log-Jacobian, so the guide's
    density of the constrained values is exact. Parameters: ``global_loc``,
    ``global_scale`` and ``global_tril`` (full rank) or ``global_cov_factor``
    (low rank), see :func:`_joint_normal`. The initial normal is centered on
    the mean-field guides' initial values with standard deviation
    ``GUIDE_SCALE`` and no correlation.
    """
    blocks = _joint_blocks(specs, dims)
    init = jnp.concatenate([jnp.ravel(u) for _, _, u in blocks])
    check_joint_guide(family, int(init.size))
    loc = numpyro.param(f"{JOINT_PREFIX}_loc", init)
    normal = _joint_normal(loc, family)
    latent = numpyro.sample(JOINT_SITE, normal, infer={"is_auxiliary": True})
    offset = 0
    for spec, transform, unconstrained in blocks:
        x = latent[offset : offset + unconstrained.size].reshape(unconstrained.shape)
        offset += unconstrained.size
        value = transform(x)
        log_density = -jnp.sum(transform.log_abs_det_jacobian(x, value))
        numpyro.sample(
            spec.name,
            dist.Delta(value, log_density=log_density, event_dim=jnp.ndim(value)),
        )


class GuideBuilder:
    """Builds the guide matching a list of parameter specs.

    Examples
    --------
    >>> guide = GuideBuilder().from_specs(specs).build()
    >>> joint = GuideBuilder().from_specs(specs).with_global_guide(JointGuide(8))
    """

    def __init__(self) -> None:
        self.specs: list[ParamSpec] = []
        self.global_guide: JointGuide | None = None

    def from_specs(self, specs: Sequence[ParamSpec]) -> GuideBuilder:
        """Use these specs (their ``guide_family``; ``None`` is mean field)."""
        self.specs = list(specs)
        return self

    def with_global_guide(self, family: JointGuide | None) -> GuideBuilder:
        """Guide every global spec with one joint normal (``None``: per spec).

        Raises
        ------
        TypeError
            If ``family`` is not a :class:`JointGuide` or ``None``.
        """
        if family is not None and not isinstance(family, JointGuide):
            raise TypeError(
                f"global guide must be a JointGuide or None, got {family!r}"
            )
        self.global_guide = family
        return self

    def _check(self) -> None:
        """Check the amortized specs and the specs under a joint global guide.

        Amortized specs must be cell-specific with outputs naming their
        parameters; under a joint global guide, global specs keep the default
        (mean-field) family.
        """
        for spec in self.specs:
            family = spec.guide_family
            if isinstance(family, AmortizedGuide):
                if not spec.is_cell_specific:
                    raise ValueError(
                        f"{spec.name}: AmortizedGuide needs a cell-specific spec"
                    )
                outputs = tuple(family.amortizer.output_params)
                if set(outputs) != set(spec.param_names):
                    raise ValueError(
                        f"{spec.name}: amortizer output_params {outputs} must be "
                        f"{spec.param_names}"
                    )
            elif (
                self.global_guide is not None
                and not spec.is_cell_specific
                and not isinstance(family, MeanFieldGuide | None)
            ):
                raise ValueError(
                    f"{spec.name}: the joint global guide covers every global "
                    f"parameter; its guide_family {type(family).__name__} would "
                    "be ignored (remove it, or drop the global guide)"
                )

    def build(self) -> Callable[..., None]:
        """The guide function (same signature as the model).

        Raises
        ------
        ValueError
            Without specs, for an amortizer whose outputs do not name the
            spec's parameters, or for a global spec with its own guide family
            under a joint global guide.
        """
        if not self.specs:
            raise ValueError("GuideBuilder.build() needs specs: call from_specs first")
        self._check()
        specs, joint = list(self.specs), self.global_guide
        groups = latent_groups(specs)
        amortized = [s for s in specs if isinstance(s.guide_family, AmortizedGuide)]
        global_specs = [s for s in specs if not s.is_cell_specific]
        grouped = {s.name for g in groups.values() for s in g}

        def family_of(spec: ParamSpec) -> Any:
            return MeanFieldGuide() if spec.guide_family is None else spec.guide_family

        def guide(
            n_cells: int,
            n_genes: int,
            model_config: ModelConfig | None = None,
            counts: Any = None,
            batch_size: int | None = None,
            cell_indices: Any = None,
        ) -> None:
            dims = model_dims(n_cells, n_genes, model_config)
            check_counts(counts, n_cells, n_genes, batch_size, cell_indices)
            if (amortized or groups) and counts is None:
                raise ValueError("amortized guides need the counts")
            if joint is None:
                for spec in global_specs:
                    setup_guide(spec, family_of(spec), dims, model_config)
            elif global_specs:
                sample_joint_guide(global_specs, joint, dims)
            networks = {  # initialized on (standardized by) the given cells
                s.name: flax_module(
                    f"{s.name}_amortizer",
                    s.guide_family.amortizer,
                    s.guide_family.amortizer.sufficient_statistic(counts),
                )
                for s in amortized
            }
            encoders = {
                key: flax_module(
                    f"{g[0].guide_family.latent_spec.sample_site}_encoder",
                    g[0].guide_family.encoder,
                    input_shape=(1, n_genes),
                )
                for key, g in groups.items()
            }
            with cell_plate(n_cells, batch_size, cell_indices) as idx:
                batch = batch_rows(counts, idx, batch_size)
                for key, group in groups.items():
                    latent = group[0].guide_family.latent_spec
                    var_params = encoders[key](batch)
                    numpyro.sample(
                        latent.sample_site, latent.make_guide_dist(var_params)
                    )
                for spec in specs:
                    if not spec.is_cell_specific or spec.name in grouped:
                        continue
                    setup_guide(
                        spec,
                        family_of(spec),
                        dims,
                        model_config,
                        index=idx,
                        n_cells=n_cells,
                        counts=batch,
                        network=networks.get(spec.name),
                    )

        return guide
