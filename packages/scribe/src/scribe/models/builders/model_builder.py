"""``ModelBuilder``: compose parameter specs, derived values and a likelihood.

The built model has the signature
``model(n_cells, n_genes, model_config=None, counts=None, batch_size=None,
cell_indices=None)`` and four plate modes: prior predictive (``counts=None``),
full (``counts`` given), minibatch (``batch_size`` set: cell-specific parameters
and counts are indexed by the plate's subsample) and given cells
(``cell_indices`` set: ``counts`` holds just those cells' rows and the plate
subsamples exactly them, so a caller can densify a batch from sparse storage).
Global parameters are sampled outside the cell plate, cell-specific ones inside
it; a spec whose guide family is
:class:`GroupedAmortizedGuide` is decoded from a latent ``z`` drawn from the
latent prior in the plate (the model side of the VAE).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import jax.numpy as jnp
import numpyro
from numpyro import handlers
from numpyro.contrib.module import flax_module
from pydantic import BaseModel, ConfigDict, Field

from scribe.models.builders.parameter_specs import ParamSpec, sample_prior
from scribe.models.components.guide_families import GroupedAmortizedGuide

CELL_PLATE = "cells"


class ModelConfig(BaseModel):
    """Settings shared by a model and its guide.

    Attributes
    ----------
    n_components : int, optional
        Mixture components (``None``: no mixture).
    """

    model_config = ConfigDict(frozen=True)

    n_components: int | None = Field(default=None, ge=2)


def model_dims(
    n_cells: int, n_genes: int, model_config: ModelConfig | None
) -> dict[str, int]:
    """The symbolic dimensions of a model call."""
    for name, value in (("n_cells", n_cells), ("n_genes", n_genes)):
        if int(value) < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    dims = {"n_cells": int(n_cells), "n_genes": int(n_genes)}
    if model_config is not None and model_config.n_components is not None:
        dims["n_components"] = model_config.n_components
    return dims


def check_counts(
    counts: Any,
    n_cells: int,
    n_genes: int,
    batch_size: Any,
    cell_indices: Any = None,
) -> None:
    """Validate the counts, batch size and cell indices of a model or guide call."""
    if cell_indices is not None:
        if batch_size is not None:
            raise ValueError("give batch_size or cell_indices, not both")
        rows = jnp.shape(cell_indices)
        if len(rows) != 1 or not 1 <= rows[0] <= n_cells:
            raise ValueError(
                f"cell_indices must be a 1-D array of 1 to n_cells = {n_cells} "
                f"indices, got shape {rows}"
            )
        expected = (rows[0], n_genes)
    else:
        expected = (n_cells, n_genes)
    if counts is not None and tuple(counts.shape) != expected:
        raise ValueError(
            f"counts has shape {tuple(counts.shape)}, expected {expected} "
            "(n_cells or len(cell_indices), n_genes)"
        )
    if batch_size is not None and not 1 <= int(batch_size) <= n_cells:
        raise ValueError(f"batch_size must be in [1, n_cells], got {batch_size!r}")


@contextmanager
def cell_plate(
    n_cells: int, batch_size: int | None, cell_indices: Any
) -> Iterator[Any]:
    """The cell plate: all cells, a random subsample, or the given ``cell_indices``.

    Given indices are substituted for the plate's subsample, so the likelihood
    is scaled by ``n_cells / len(cell_indices)`` as for a random minibatch.
    """
    if cell_indices is None:
        with numpyro.plate(CELL_PLATE, n_cells, subsample_size=batch_size) as idx:
            yield idx
        return
    size = jnp.shape(cell_indices)[0]
    with (
        handlers.substitute(data={CELL_PLATE: cell_indices}),
        numpyro.plate(CELL_PLATE, n_cells, subsample_size=size) as idx,
    ):
        yield idx


def batch_rows(counts: Any, idx: Any, batch_size: int | None) -> Any:
    """The rows of ``counts`` of this call's cells (all of them when not batched)."""
    if counts is None or batch_size is None:
        return counts
    return jnp.take(counts, idx, axis=0)


def float_counts(counts: Any) -> Any:
    """Counts as a float array (``None`` stays ``None``).

    Count matrices usually arrive as integers; an integer observation gets a
    ``float0`` tangent in the likelihood's ``xlogy`` and breaks every gradient.
    """
    return None if counts is None else jnp.asarray(counts, jnp.result_type(float))


def latent_groups(specs: Sequence[ParamSpec]) -> dict[int, list[ParamSpec]]:
    """Specs decoded from one latent, grouped by their ``GroupedAmortizedGuide``."""
    groups: dict[int, list[ParamSpec]] = {}
    for spec in specs:
        if isinstance(spec.guide_family, GroupedAmortizedGuide):
            if not spec.is_cell_specific:
                raise ValueError(
                    f"{spec.name}: a GroupedAmortizedGuide (VAE) parameter must be "
                    "cell-specific"
                )
            groups.setdefault(id(spec.guide_family), []).append(spec)
    return groups


class ModelBuilder:
    """Chainable builder of a NumPyro model.

    Examples
    --------
    >>> model = (ModelBuilder()
    ...     .add_param(BetaSpec("p", (), (1.0, 1.0)))
    ...     .add_param(LogNormalSpec("r", ("n_genes",), (0.0, 1.0),
    ...                              is_gene_specific=True))
    ...     .with_likelihood(NegativeBinomialLikelihood())
    ...     .build())
    """

    def __init__(self) -> None:
        self.specs: list[ParamSpec] = []
        self.derived: list[tuple[str, Callable[..., Any], tuple[str, ...]]] = []
        self.likelihood: Any = None

    def _names(self) -> list[str]:
        return [s.name for s in self.specs] + [d[0] for d in self.derived]

    def add_param(self, spec: ParamSpec) -> ModelBuilder:
        """Add a sampled parameter.

        Raises
        ------
        ValueError
            If the name is taken.
        """
        if spec.name in self._names():
            raise ValueError(f"parameter {spec.name!r} is already defined")
        self.specs.append(spec)
        return self

    def add_derived(
        self, name: str, fn: Callable[..., Any], deps: Sequence[str]
    ) -> ModelBuilder:
        """Add ``name = fn(*deps)``, recorded as a ``numpyro.deterministic`` site.

        Raises
        ------
        ValueError
            If the name is taken or a dependency is not defined yet.
        """
        if name in self._names():
            raise ValueError(f"parameter {name!r} is already defined")
        unknown = [d for d in deps if d not in self._names()]
        if unknown:
            raise ValueError(
                f"derived {name!r} depends on undefined {unknown}; "
                f"defined: {self._names()}"
            )
        self.derived.append((name, fn, tuple(deps)))
        return self

    def with_likelihood(self, likelihood: Any) -> ModelBuilder:
        """Set the likelihood of the counts."""
        self.likelihood = likelihood
        return self

    def build(self) -> Callable[..., None]:
        """The model function.

        Raises
        ------
        ValueError
            Without a likelihood.
        """
        if self.likelihood is None:
            raise ValueError(
                "ModelBuilder.build() needs a likelihood: call "
                "with_likelihood(...) first"
            )
        specs, derived, likelihood = (
            list(self.specs),
            list(self.derived),
            self.likelihood,
        )
        groups = latent_groups(specs)
        cell_level = {s.name for s in specs if s.is_cell_specific}
        for name, _, deps in derived:  # derived from a cell-level value is cell-level
            if cell_level & set(deps):
                cell_level.add(name)

        def model(
            n_cells: int,
            n_genes: int,
            model_config: ModelConfig | None = None,
            counts: Any = None,
            batch_size: int | None = None,
            cell_indices: Any = None,
        ) -> None:
            dims = model_dims(n_cells, n_genes, model_config)
            check_counts(counts, n_cells, n_genes, batch_size, cell_indices)
            counts = float_counts(counts)
            values: dict[str, Any] = {}
            for spec in specs:
                if not spec.is_cell_specific:
                    values[spec.name] = sample_prior(spec, dims, model_config)
            for name, fn, deps in derived:
                if name not in cell_level:
                    values[name] = numpyro.deterministic(
                        name, fn(*(values[d] for d in deps))
                    )
            decoders = {
                key: flax_module(
                    f"{group[0].guide_family.latent_spec.sample_site}_decoder",
                    group[0].guide_family.decoder,
                    input_shape=(1, group[0].guide_family.latent_spec.latent_dim),
                )
                for key, group in groups.items()
            }
            with cell_plate(n_cells, batch_size, cell_indices) as idx:
                for key, group in groups.items():
                    latent = group[0].guide_family.latent_spec
                    z = numpyro.sample(latent.sample_site, latent.make_prior_dist())
                    decoded = decoders[key](z)
                    for spec in group:
                        values[spec.name] = numpyro.deterministic(
                            spec.name, decoded[spec.name]
                        )
                for spec in specs:
                    if spec.is_cell_specific and spec.name not in values:
                        values[spec.name] = sample_prior(spec, dims, model_config)
                for name, fn, deps in derived:
                    if name in cell_level:
                        values[name] = numpyro.deterministic(
                            name, fn(*(values[d] for d in deps))
                        )
                likelihood.sample(values, batch_rows(counts, idx, batch_size))

        return model
