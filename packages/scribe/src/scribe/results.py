"""``ScribeResults``: what a fit returns, what can be drawn from it and kept.

A result is its :class:`~scribe.config.FitConfig`, the guide's parameters, the
loss history and the cell and gene names; the model and guide functions are
rebuilt from the configuration, so a result saves as JSON and arrays
(:mod:`scribe.io`). The counts (needed by amortized and VAE guides, mixture
assignments and the posterior predictive of given cells) are attached by
:func:`scribe.fit` or given to :func:`scribe.load`.

Draws over many cells run in chunks of cells: the global parameters are drawn
once and held fixed (numpyro's ``Predictive`` with ``posterior_samples``) while
each chunk's cell-level ones are drawn, and every request is checked against
the memory available before anything is allocated.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp
from numpyro import handlers
from numpyro.infer import Predictive

from scribe.config import FitConfig
from scribe.data import CountData, as_count_data, check_fits_in_memory
from scribe.models.builders.model_builder import CELL_PLATE, ModelConfig
from scribe.models.builders.parameter_specs import ParamSpec
from scribe.models.components.guide_families import GroupedAmortizedGuide
from scribe.models.components.likelihoods import log_likelihood
from scribe.models.presets import standard_model

CHUNK_FLOATS = 2**25  # floats of one chunk's draws (128 MiB of float32)


@dataclass(frozen=True)
class SiteInfo:
    """A site of the model or guide: cell-level or global, and its kind."""

    name: str
    per_cell: bool
    kind: str  # "sample" or "deterministic"
    shape: tuple[int, ...]  # without the cell axis


def _positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _seed(seed: Any) -> jax.Array:
    """A JAX PRNG key from a user's seed, or an error naming ``seed``."""
    return jax.random.PRNGKey(FitConfig(seed=seed).seed)


@dataclass(frozen=True)
class ScribeResults:
    """A fitted model: configuration, variational parameters, loss, names.

    Attributes
    ----------
    config : FitConfig
        Every setting of the fit.
    params : dict of arrays
        The guide's variational parameters (constrained), and the networks'
        (``{name}$params``) for amortized and VAE guides.
    loss_history : numpy array
        Negative ELBO per step (of the minibatch, scaled to all cells).
    cell_names, gene_names : numpy arrays of str
    data : CountData, optional
        The fitted counts, where attached.
    """

    config: FitConfig
    params: dict[str, Any]
    loss_history: np.ndarray
    cell_names: np.ndarray = field(repr=False)
    gene_names: np.ndarray = field(repr=False)
    data: CountData | None = field(default=None, repr=False)

    @property
    def n_cells(self) -> int:
        """Cells of the fit."""
        return len(self.cell_names)

    @property
    def n_genes(self) -> int:
        """Genes of the fit."""
        return len(self.gene_names)

    @property
    def model_config(self) -> ModelConfig:
        """The model configuration of the fit."""
        return ModelConfig(n_components=self.config.n_components)

    @cached_property
    def _built(self) -> tuple[Callable[..., None], Callable[..., None], list]:
        return standard_model(n_genes=self.n_genes, **self.config.model_kwargs())

    @property
    def model_fn(self) -> Callable[..., None]:
        """The NumPyro model."""
        return self._built[0]

    @property
    def guide_fn(self) -> Callable[..., None]:
        """The NumPyro guide."""
        return self._built[1]

    @property
    def specs(self) -> list[ParamSpec]:
        """The parameter specs of the model."""
        return self._built[2]

    @property
    def needs_counts(self) -> bool:
        """Whether the guide reads the counts (amortized and VAE guides)."""
        return self.config.guide in ("amortized", "vae")

    def with_data(self, data: Any, layer: str | None = None) -> ScribeResults:
        """The same fit with ``data`` attached (checked against the fit's names).

        Raises
        ------
        ValueError
            If the shape or the cell or gene names differ from the fit's.
        """
        counts = data if isinstance(data, CountData) else as_count_data(data, layer)
        self.check_matches("data", counts.shape, counts.cell_names, counts.gene_names)
        return ScribeResults(
            self.config,
            self.params,
            self.loss_history,
            self.cell_names,
            self.gene_names,
            counts,
        )

    def check_matches(
        self, what: str, shape: tuple[int, int], cells: Any, genes: Any
    ) -> None:
        """Refuse a matrix whose shape or cell or gene names differ from the fit's.

        Raises
        ------
        ValueError
            Naming ``what`` and the first position where the names differ.
        """
        if tuple(shape) != (self.n_cells, self.n_genes):
            raise ValueError(
                f"{what} has shape {tuple(shape)}, the fit has "
                f"{(self.n_cells, self.n_genes)} (cells, genes)"
            )
        for kind, got, expected in (
            ("cell", cells, self.cell_names),
            ("gene", genes, self.gene_names),
        ):
            got = np.asarray(got, dtype=str)
            if not np.array_equal(got, expected):
                first = int(np.flatnonzero(got != expected)[0])
                raise ValueError(
                    f"{what}'s {kind} names differ from the fit's, first at "
                    f"position {first}: {got[first]!r} vs {expected[first]!r}"
                )

    @cached_property
    def sites(self) -> dict[str, SiteInfo]:
        """Sampled and derived sites of the guide and model (not ``counts``).

        Found by tracing both on one cell under ``jax.eval_shape`` (abstractly:
        nothing is computed).
        """
        one = jnp.zeros(1, jnp.int32)
        kwargs = self._call_kwargs(one, counts=jnp.zeros((1, self.n_genes)))
        sites: dict[str, SiteInfo] = {}

        def record(fn: Callable[..., None]) -> int:
            trace = handlers.trace(
                handlers.seed(handlers.substitute(fn, data=self.params), 0)
            ).get_trace(**kwargs)
            for name, msg in trace.items():
                if msg["type"] not in ("sample", "deterministic") or name in sites:
                    continue
                if name == "counts" or msg.get("infer", {}).get("is_auxiliary"):
                    continue
                per_cell = any(f.name == CELL_PLATE for f in msg["cond_indep_stack"])
                shape = tuple(jnp.shape(msg["value"]))[int(per_cell) :]
                sites[name] = SiteInfo(name, per_cell, msg["type"], shape)
            return 0

        for fn in (self.guide_fn, self.model_fn):
            jax.eval_shape(lambda fn=fn: record(fn))
        return sites

    def _call_kwargs(self, cells: Any, counts: Any = None) -> dict[str, Any]:
        return {
            "n_cells": self.n_cells,
            "n_genes": self.n_genes,
            "model_config": self.model_config,
            "counts": counts,
            "cell_indices": cells,
        }

    def _cells(self, cells: Any) -> np.ndarray:
        if cells is None:
            return np.arange(self.n_cells)
        index = np.asarray(cells)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        if index.ndim != 1 or index.size == 0 or index.dtype.kind not in "iu":
            raise ValueError("cells must be a non-empty 1-D array of cell indices")
        if index.min() < 0 or index.max() >= self.n_cells:
            raise ValueError(f"cells must be indices in [0, {self.n_cells})")
        return index

    def _require_data(self, what: str) -> CountData:
        if self.data is None:
            raise ValueError(
                f"{what} needs the counts: pass data= to scribe.load, or use "
                "results.with_data(adata)"
            )
        return self.data

    def _chunks(self, cells: np.ndarray, floats_per_cell: int) -> Iterator[np.ndarray]:
        size = max(1, CHUNK_FLOATS // max(1, floats_per_cell))
        for start in range(0, cells.size, size):
            yield cells[start : start + size]

    @cached_property
    def _jit_draws(self) -> Callable[..., dict[str, jax.Array]]:
        """Guide draws (globals from ``fixed`` when given) and derived values."""
        derived_sites = [k for k, s in self.sites.items() if s.kind == "deterministic"]
        # the counts site substituted: derived values never sample counts
        model = handlers.substitute(self.model_fn, data={"counts": jnp.zeros(())})

        def draws(
            rng_key: jax.Array,
            params: dict[str, Any],
            counts: jax.Array | None,
            cells: jax.Array,
            fixed: dict[str, jax.Array] | None,
            n_samples: int,
        ) -> dict[str, jax.Array]:
            kwargs = self._call_kwargs(cells, counts)
            rng_key_guide, rng_key_model = jax.random.split(rng_key)
            latent = Predictive(
                self.guide_fn,
                params=params,
                num_samples=None if fixed else n_samples,
                posterior_samples=fixed,
            )(rng_key_guide, **kwargs)
            latent = {**(fixed or {}), **latent}
            if derived_sites:
                latent |= Predictive(
                    model,
                    posterior_samples=latent,
                    params=params,
                    return_sites=derived_sites,
                )(rng_key_model, **kwargs)
            return latent

        return jax.jit(draws, static_argnames="n_samples")

    def _chunk_counts(self, chunk: np.ndarray, globals_only: bool) -> Any:
        """The counts a guide reads for ``chunk`` (``None`` when it reads none).

        Without attached counts, a request of global sites only gives an
        amortized or VAE guide zero counts: its global sites do not read them.
        """
        if not self.needs_counts:
            return None
        if self.data is None and globals_only:
            return jnp.zeros((chunk.size, self.n_genes))
        return jnp.asarray(self._require_data("this guide").rows(chunk))

    def posterior_samples(
        self,
        n_samples: int = 100,
        seed: int = 0,
        return_sites: Sequence[str] | None = None,
        cells: Any = None,
    ) -> dict[str, np.ndarray]:
        """Draws of the parameters from the guide, with the derived ones.

        Parameters
        ----------
        n_samples : int
        seed : int
        return_sites : sequence of str, optional
            Sites to keep (default: every sampled and derived one, see
            :attr:`sites`).
        cells : array of int or bool, optional
            The cells of the cell-level sites (default: all).

        Returns
        -------
        dict
            ``{site: [n_samples, ...]}``; cell-level sites have the cells' axis
            second.

        Raises
        ------
        ValueError
            For an unknown site or bad ``n_samples`` / ``cells``.
        MemoryError
            If the draws would not fit (with the estimate).
        """
        n_samples = _positive("n_samples", n_samples)
        rng_key = _seed(seed)
        keep = list(self.sites) if return_sites is None else list(return_sites)
        unknown = sorted(set(keep) - set(self.sites))
        if unknown:
            raise ValueError(
                f"return_sites {unknown} are not sites of the model; sites: "
                f"{sorted(self.sites)}"
            )
        index = self._cells(cells)
        info = [self.sites[k] for k in keep]
        globals_only = not any(s.per_cell for s in info)
        if globals_only:
            index = index[:1]
        per_cell = sum(math.prod(s.shape) for s in info if s.per_cell)
        total = n_samples * (
            per_cell * index.size + sum(math.prod(s.shape) for s in info)
        )
        computed = sum(math.prod(s.shape) for s in self.sites.values() if s.per_cell)
        check_fits_in_memory(
            4 * total,
            f"{n_samples} draws of {sorted(keep)} for {index.size} cells",
            "lower n_samples, pick return_sites or cells",
        )
        global_names = [name for name, s in self.sites.items() if not s.per_cell]
        parts: list[dict[str, Any]] = []
        fixed = None
        chunk_floats = n_samples * 2 * computed + self.n_genes
        for i, chunk in enumerate(self._chunks(index, chunk_floats)):
            draws = self._jit_draws(
                jax.random.fold_in(rng_key, i),
                self.params,
                self._chunk_counts(chunk, globals_only),
                jnp.asarray(chunk, jnp.int32),
                fixed,
                n_samples=n_samples,
            )
            if fixed is None:
                fixed = {k: draws[k] for k in global_names if k in draws}
            parts.append(
                {k: np.asarray(draws[k]) for k in keep if self.sites[k].per_cell}
            )
        out = {k: np.asarray(fixed[k]) for k in keep if not self.sites[k].per_cell}
        for k in keep:
            if self.sites[k].per_cell:
                out[k] = np.concatenate([part[k] for part in parts], axis=1)
        return out

    def posterior_mean(self, n_samples: int = 200, seed: int = 0) -> dict[str, Any]:
        """Posterior means of the parameters (Monte Carlo over the guide)."""
        draws = self.posterior_samples(n_samples, seed)
        return {k: v.mean(axis=0) for k, v in draws.items()}

    def posterior_predictive(
        self, n_samples: int = 10, seed: int = 0, cells: Any = None
    ) -> np.ndarray:
        """Replicated count matrices ``[n_samples, cells, n_genes]``.

        Each replicate draws the parameters from the guide, then the counts
        from the model given them.

        Raises
        ------
        MemoryError
            If the replicates would not fit (with the estimate): lower
            ``n_samples`` or pass a subset of ``cells``.
        """
        n_samples = _positive("n_samples", n_samples)
        index = self._cells(cells)
        check_fits_in_memory(
            4 * n_samples * index.size * self.n_genes,
            f"{n_samples} replicates of {index.size} cells x {self.n_genes} genes",
            "lower n_samples or pass a subset of cells",
        )
        rng_key = _seed(seed)
        draws = self.posterior_samples(n_samples, seed, cells=index)
        global_names = [k for k, s in self.sites.items() if not s.per_cell]
        replicates = []
        for start, chunk in self._offsets(index, n_samples * self.n_genes):
            conditioned = {
                k: v if k in global_names else v[:, start : start + chunk.size]
                for k, v in draws.items()
            }
            rng_key_chunk = jax.random.fold_in(jax.random.fold_in(rng_key, 1), start)
            replicates.append(
                np.asarray(
                    self._jit_replicates(
                        rng_key_chunk,
                        self.params,
                        conditioned,
                        jnp.asarray(chunk, jnp.int32),
                    )
                )
            )
        return np.concatenate(replicates, axis=1)

    @cached_property
    def _jit_replicates(self) -> Callable[..., jax.Array]:
        """Counts drawn from the model given parameter draws, for given cells."""

        def replicates(
            rng_key: jax.Array,
            params: dict[str, Any],
            draws: dict[str, jax.Array],
            cells: jax.Array,
        ) -> jax.Array:
            return Predictive(
                self.model_fn,
                posterior_samples=draws,
                params=params,
                return_sites=["counts"],
            )(rng_key, **self._call_kwargs(cells))["counts"]

        return jax.jit(replicates)

    def _offsets(
        self, index: np.ndarray, floats_per_cell: int
    ) -> Iterator[tuple[int, np.ndarray]]:
        start = 0
        for chunk in self._chunks(index, floats_per_cell):
            yield start, chunk
            start += chunk.size

    def assignment_probabilities(
        self, n_samples: int = 100, seed: int = 0, cells: Any = None
    ) -> np.ndarray:
        """Per-cell posterior probabilities of the mixture components.

        For every posterior draw, ``P(k | cell) = softmax_k(log w_k + log
        p(counts | component k))``; the result averages over ``n_samples``
        draws.

        Returns
        -------
        numpy array
            ``[cells, n_components]``, rows summing to one.

        Raises
        ------
        ValueError
            If the model is not a mixture or the counts are not attached.
        """
        if self.config.n_components is None:
            raise ValueError("assignment_probabilities needs a mixture (n_components)")
        data = self._require_data("assignment_probabilities")
        index = self._cells(cells)
        needed = ["p", "r", "mixing_weights"] + [
            k for k in ("gate", "p_capture") if k in self.sites
        ]
        draws = self.posterior_samples(n_samples, seed, needed, cells=index)
        global_names = [k for k in needed if not self.sites[k].per_cell]
        k_genes = self.config.n_components * self.n_genes
        probabilities = []
        for start, chunk in self._offsets(index, k_genes):
            params = {
                k: v if k in global_names else v[:, start : start + chunk.size]
                for k, v in draws.items()
            }
            probabilities.append(
                np.asarray(_mean_assignment(jnp.asarray(data.rows(chunk)), params))
            )
        return np.concatenate(probabilities, axis=0)

    def latent_representation(self, batch_size: int = 1024) -> np.ndarray:
        """Means of the VAE's latent ``q(z | counts)`` per cell (as ``X_scVI``).

        Raises
        ------
        ValueError
            If the guide is not a VAE or the counts are not attached.
        """
        families = [
            s.guide_family
            for s in self.specs
            if isinstance(s.guide_family, GroupedAmortizedGuide)
        ]
        if not families:
            raise ValueError("latent_representation needs guide='vae'")
        data = self._require_data("latent_representation")
        family = families[0]
        weights = self.params[f"{family.latent_spec.sample_site}_encoder$params"]
        encode = jax.jit(lambda x: family.encoder.apply({"params": weights}, x)["loc"])
        batch_size = _positive("batch_size", batch_size)
        cells = np.arange(self.n_cells)
        return np.concatenate(
            [
                np.asarray(encode(jnp.asarray(data.rows(cells[s : s + batch_size]))))
                for s in range(0, self.n_cells, batch_size)
            ]
        )

    def final_loss(self, fraction: float = 0.05) -> float:
        """Mean negative ELBO over the last ``fraction`` of the steps."""
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
        tail = max(1, round(fraction * self.loss_history.size))
        return float(np.mean(self.loss_history[-tail:]))

    def plot_loss(self, path: str | os.PathLike) -> Path:
        """Write the loss curve (negative ELBO per step) as a PNG."""
        from scribe.plots import plot_loss

        return plot_loss(self, path)

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Save to the directory ``path`` (see :func:`scribe.io.save_results`)."""
        from scribe.io import save_results

        return save_results(self, path, overwrite=overwrite)

    def to_anndata(self, adata: Any = None, n_samples: int = 100, seed: int = 0) -> Any:
        """Write posterior summaries into an AnnData (see :mod:`scribe.annotate`)."""
        from scribe.annotate import annotate

        return annotate(self, adata, n_samples=n_samples, seed=seed)


@jax.jit
def _mean_assignment(counts: jax.Array, draws: dict[str, jax.Array]) -> jax.Array:
    """Component probabilities of ``counts`` averaged over the draws' first axis."""

    def one(params: dict[str, jax.Array]) -> jax.Array:
        terms = log_likelihood(counts, params, split_components=True)
        return jnp.exp(terms - logsumexp(terms, axis=-1, keepdims=True))

    return jnp.mean(jax.lax.map(one, draws), axis=0)
