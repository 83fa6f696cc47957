"""Parameter specifications: *what* each sample site is.

A spec names a sample site, its symbolic shape (``()``, ``("n_genes",)``,
``("n_cells",)``), its prior family and default hyper-parameters, and the
variational family its guide uses. The builders compose specs; the functions
:func:`sample_prior` (here) and ``setup_guide`` (``guide_builder.py``) are
``multipledispatch`` functions, so a new (spec, guide family) pair registers
from user code without editing the library.

Specs take their first three fields positionally, as the spec's examples do:
``BetaSpec("p", (), (1.0, 1.0))``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from multipledispatch import dispatch
from numpyro.distributions import constraints
from numpyro.distributions.transforms import (
    ExpTransform,
    SigmoidTransform,
    SoftplusTransform,
    Transform,
)
from pydantic import BaseModel, ConfigDict, model_validator

from scribe.models.components.distributions import BetaPrime

POSITIONAL = ("name", "shape_dims", "default_params")
CELL_DIM = "n_cells"
GENE_DIM = "n_genes"
COMPONENT_DIM = "n_components"


class ParamSpec(BaseModel, ABC):
    """A sample site: its prior, shape and variational family.

    Attributes
    ----------
    name : str
        The sample site.
    shape_dims : tuple of str
        Symbolic shape, resolved against ``dims`` (e.g. ``{"n_genes": 2000}``).
    default_params : tuple of float
        Default prior hyper-parameters.
    prior : tuple of float, optional
        Overrides ``default_params`` for the prior.
    guide : tuple of float, optional
        Initial values of the guide's parameters (default: the prior's).
    is_gene_specific, is_cell_specific : bool
        Per gene (set from ``"n_genes"`` in ``shape_dims``); per cell (sampled
        inside the cell plate; required when ``shape_dims`` has ``"n_cells"``).
    is_mixture : bool
        One value per mixture component (prepends ``n_components``).
    guide_family : object, optional
        The variational family (``None``: mean field).
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    name: str
    shape_dims: tuple[str, ...] = ()
    default_params: tuple[float, ...]
    prior: tuple[float, ...] | None = None
    guide: tuple[float, ...] | None = None
    is_gene_specific: bool = False
    is_cell_specific: bool = False
    is_mixture: bool = False
    guide_family: Any = None

    n_params: ClassVar[int] = 2
    positive_params: ClassVar[tuple[int, ...]] = (0, 1)
    param_names: ClassVar[tuple[str, ...]] = ("alpha", "beta")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if len(args) > len(POSITIONAL):
            raise TypeError(
                f"{type(self).__name__} takes at most {len(POSITIONAL)} positional "
                f"arguments {POSITIONAL}, got {len(args)}"
            )
        for field, value in zip(POSITIONAL, args, strict=False):
            if field in kwargs:
                raise TypeError(f"{field} given positionally and by keyword")
            kwargs[field] = value
        super().__init__(**kwargs)

    @model_validator(mode="before")
    @classmethod
    def _axis_flags(cls, data: Any) -> Any:
        """Reconcile the per-gene / per-cell flags with ``shape_dims``.

        ``shape_dims`` decides the shape: ``"n_genes"`` in it makes the spec
        gene-specific (the spec's Mixed Guide Families example omits the flag).
        A flag that contradicts the shape is an error, and so is an
        ``"n_cells"`` axis outside the cell plate (it would not be minibatched).
        """
        if not isinstance(data, dict):
            return data
        name = data.get("name")
        dims = tuple(data.get("shape_dims", ()))
        if GENE_DIM in dims:
            if data.get("is_gene_specific") is False:
                raise ValueError(
                    f"{name}: shape_dims {dims} has {GENE_DIM!r} but "
                    "is_gene_specific=False"
                )
            data = {**data, "is_gene_specific": True}
        elif data.get("is_gene_specific"):
            raise ValueError(
                f"{name}: is_gene_specific=True needs {GENE_DIM!r} in shape_dims, "
                f"got {dims}"
            )
        if CELL_DIM in dims and not data.get("is_cell_specific"):
            raise ValueError(
                f"{name}: shape_dims {dims} has {CELL_DIM!r}: set "
                "is_cell_specific=True (sampled inside the cell plate)"
            )
        return data

    @model_validator(mode="after")
    def _validate(self) -> ParamSpec:
        if self.is_mixture and self.is_cell_specific:
            raise ValueError(
                f"{self.name}: a parameter cannot be both a mixture component "
                "parameter (is_mixture) and cell-specific (is_cell_specific)"
            )
        for label, values in (
            ("default_params", self.default_params),
            ("prior", self.prior),
            ("guide", self.guide),
        ):
            if values is not None:
                self._check_params(label, values)
        return self

    def _check_params(self, label: str, values: tuple[float, ...]) -> None:
        """Length and positivity of a hyper-parameter tuple."""
        if self.n_params and len(values) != self.n_params:
            raise ValueError(
                f"{self.name}: {label} must be a tuple of {self.n_params} numbers "
                f"for {type(self).__name__}, got {values!r}"
            )
        for i in self.positive_params if self.n_params else range(len(values)):
            if not (math.isfinite(values[i]) and values[i] > 0):
                raise ValueError(
                    f"{self.name}: {label}[{i}] must be positive for "
                    f"{type(self).__name__}, got {values[i]!r}"
                )

    @property
    def prior_params(self) -> tuple[float, ...]:
        """The prior's hyper-parameters (``prior`` or ``default_params``)."""
        return self.prior if self.prior is not None else self.default_params

    @abstractmethod
    def make_dist(self, *params: Any) -> dist.Distribution:
        """The distribution family with the given parameters."""

    @property
    def support(self) -> constraints.Constraint:
        """Support of the sampled value."""
        return self.make_dist(*self.prior_params).support

    @property
    def arg_constraints(self) -> dict[str, constraints.Constraint]:
        """Constraints on the distribution's parameters."""
        return dict(self.make_dist(*self.prior_params).arg_constraints)

    def resolve_shape(
        self, dims: Mapping[str, int], inside_cell_plate: bool = False
    ) -> tuple[int, ...]:
        """Concrete shape from ``dims``; the cell plate supplies ``n_cells``.

        Raises
        ------
        ValueError
            If a symbolic dimension is missing from ``dims``.
        """
        names = list(self.shape_dims)
        if self.is_mixture and COMPONENT_DIM not in names:
            names.insert(0, COMPONENT_DIM)
        if inside_cell_plate:
            names = [n for n in names if n != CELL_DIM]
        missing = [n for n in names if n not in dims]
        if missing:
            raise ValueError(
                f"{self.name}: dimensions {missing} are not in dims {dict(dims)}"
            )
        return tuple(int(dims[n]) for n in names)


class BetaSpec(ParamSpec):
    """``Beta(alpha, beta)`` on (0, 1): p, gate, p_capture."""

    def make_dist(self, alpha: Any, beta: Any) -> dist.Distribution:
        """``Beta(alpha, beta)``."""
        return dist.Beta(alpha, beta)


class LogNormalSpec(ParamSpec):
    """``LogNormal(loc, scale)`` on (0, inf): r, mu."""

    positive_params: ClassVar[tuple[int, ...]] = (1,)
    param_names: ClassVar[tuple[str, ...]] = ("loc", "scale")

    def make_dist(self, loc: Any, scale: Any) -> dist.Distribution:
        """``LogNormal(loc, scale)``."""
        return dist.LogNormal(loc, scale)


class BetaPrimeSpec(ParamSpec):
    """``BetaPrime(alpha, beta)`` on (0, inf): odds such as phi."""

    def make_dist(self, alpha: Any, beta: Any) -> dist.Distribution:
        """``BetaPrime(alpha, beta)``."""
        return BetaPrime(alpha, beta)


class DirichletSpec(ParamSpec):
    """``Dirichlet(alpha)`` on the simplex: mixing weights.

    ``default_params`` holds one concentration per component, or a single one
    repeated over ``n_components``.
    """

    n_params: ClassVar[int] = 0
    param_names: ClassVar[tuple[str, ...]] = ("concentration",)

    def make_dist(self, *alpha: Any) -> dist.Distribution:
        """``Dirichlet(alpha)``."""
        return dist.Dirichlet(jnp.asarray(alpha, jnp.float32))

    def resolve_shape(
        self, dims: Mapping[str, int], inside_cell_plate: bool = False
    ) -> tuple[int, ...]:
        """Batch shape without the simplex axis (``n_components`` is the event)."""
        return tuple(
            s
            for n, s in zip(
                self.shape_dims, super().resolve_shape(dims, inside_cell_plate)
            )
            if n != COMPONENT_DIM
        )

    def concentration(self, dims: Mapping[str, int]) -> jnp.ndarray:
        """The concentration vector, of length ``n_components``."""
        alpha = jnp.asarray(self.prior_params, jnp.float32)
        k = int(dims.get(COMPONENT_DIM, alpha.size))
        return jnp.broadcast_to(alpha, (k,)) if alpha.size == 1 else alpha


class TransformedNormalSpec(ParamSpec):
    """``Normal(loc, scale)`` pushed through a transform; the site is constrained."""

    positive_params: ClassVar[tuple[int, ...]] = (1,)
    param_names: ClassVar[tuple[str, ...]] = ("loc", "scale")
    transform: ClassVar[Transform]

    def make_dist(self, loc: Any, scale: Any) -> dist.Distribution:
        """``Normal(loc, scale)`` through :attr:`transform`."""
        return dist.TransformedDistribution(dist.Normal(loc, scale), self.transform)


class SigmoidNormalSpec(TransformedNormalSpec):
    """``sigmoid(Normal(loc, scale))`` on (0, 1)."""

    transform: ClassVar[Transform] = SigmoidTransform()


class ExpNormalSpec(TransformedNormalSpec):
    """``exp(Normal(loc, scale))`` on (0, inf)."""

    transform: ClassVar[Transform] = ExpTransform()


class SoftplusNormalSpec(TransformedNormalSpec):
    """``softplus(Normal(loc, scale))`` on (0, inf), smoother than exp."""

    transform: ClassVar[Transform] = SoftplusTransform()


class LatentSpec(BaseModel, ABC):
    """The latent ``z`` of a VAE: encoder output -> guide distribution.

    Attributes
    ----------
    sample_site : str
        Name of the latent site (``"z"``).
    """

    model_config = ConfigDict(frozen=True)

    sample_site: str = "z"

    @abstractmethod
    def make_guide_dist(self, var_params: Mapping[str, Any]) -> dist.Distribution:
        """The guide distribution of ``z`` from the encoder's outputs."""

    @abstractmethod
    def make_prior_dist(self) -> dist.Distribution:
        """The model's prior on ``z`` (one cell)."""


class GaussianLatentSpec(LatentSpec):
    """Diagonal Gaussian latent of dimension ``latent_dim``.

    ``var_params`` holds ``loc`` and ``log_scale``, a log-variance:
    ``Normal(loc, exp(0.5 * log_scale)).to_event(1)``; the prior is a standard
    normal.
    """

    latent_dim: int

    @model_validator(mode="after")
    def _positive_dim(self) -> GaussianLatentSpec:
        if self.latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1, got {self.latent_dim}")
        return self

    def make_guide_dist(self, var_params: Mapping[str, Any]) -> dist.Distribution:
        """``Normal(loc, exp(0.5 log_scale)).to_event(1)``."""
        missing = {"loc", "log_scale"} - set(var_params)
        if missing:
            raise ValueError(f"var_params lacks {sorted(missing)}")
        scale = jnp.exp(0.5 * jnp.asarray(var_params["log_scale"]))
        return dist.Normal(var_params["loc"], scale).to_event(1)

    def make_prior_dist(self) -> dist.Distribution:
        """``Normal(0, 1)`` in ``latent_dim`` dimensions."""
        return dist.Normal(jnp.zeros(self.latent_dim), 1.0).to_event(1)


@dispatch(ParamSpec, dict, object)
def sample_prior(spec: ParamSpec, dims: dict, model_config: Any) -> jnp.ndarray:
    """Sample ``spec``'s site from its prior (inside the cell plate if cell-specific).

    Parameters
    ----------
    spec : ParamSpec
    dims : dict
        ``n_cells``, ``n_genes`` and, for mixtures, ``n_components``.
    model_config : object
        The model's configuration (unused by the default rule).
    """
    shape = spec.resolve_shape(dims, inside_cell_plate=spec.is_cell_specific)
    prior = spec.make_dist(*spec.prior_params)
    return numpyro.sample(spec.name, prior.expand(shape).to_event(len(shape)))


@dispatch(DirichletSpec, dict, object)
def sample_prior(spec: DirichletSpec, dims: dict, model_config: Any) -> jnp.ndarray:  # noqa: F811
    """Sample mixing weights from ``Dirichlet(alpha)``."""
    shape = spec.resolve_shape(dims, inside_cell_plate=spec.is_cell_specific)
    prior = dist.Dirichlet(spec.concentration(dims))
    return numpyro.sample(spec.name, prior.expand(shape).to_event(len(shape)))
