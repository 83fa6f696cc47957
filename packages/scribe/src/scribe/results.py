"""``ScribeResults``: what a fit returns, and what can be drawn from it."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np
from numpyro.infer import Predictive

from scribe.io import atomic_write
from scribe.models.builders.model_builder import ModelConfig
from scribe.models.builders.parameter_specs import ParamSpec


def atomic_savefig(figure: Any, path: str | os.PathLike) -> Path:
    """Save a matplotlib figure to ``path`` whole (format from the suffix)."""
    fmt = Path(path).suffix.lstrip(".") or "png"
    return atomic_write(
        path,
        lambda handle: figure.savefig(handle, format=fmt, dpi=120, bbox_inches="tight"),
    )


@dataclass(frozen=True)
class ScribeResults:
    """A fitted model: variational parameters, loss history, and samplers.

    Attributes
    ----------
    model, parameterization, guide : str
        The fitted model's names (see :func:`scribe.fit`).
    n_components : int or None
    n_cells, n_genes : int
    params : dict of arrays
        The guide's variational parameters (constrained), and the networks'
        (``{name}$params``) for amortized and VAE guides.
    loss_history : numpy array
        Negative ELBO per step (of the minibatch when minibatching).
    model_fn, guide_fn : callable
        The NumPyro model and guide.
    specs : list of ParamSpec
    counts : numpy array
        The fitted counts (the amortized and VAE guides read them).
    """

    model: str
    parameterization: str
    guide: str
    n_components: int | None
    n_cells: int
    n_genes: int
    params: dict[str, Any]
    loss_history: np.ndarray
    model_fn: Callable[..., None] = field(repr=False)
    guide_fn: Callable[..., None] = field(repr=False)
    specs: list[ParamSpec] = field(repr=False)
    counts: np.ndarray = field(repr=False)

    @property
    def model_config(self) -> ModelConfig:
        """The model configuration of the fit."""
        return ModelConfig(n_components=self.n_components)

    def _sizes(self, counts: Any) -> dict[str, Any]:
        return {
            "n_cells": self.n_cells,
            "n_genes": self.n_genes,
            "model_config": self.model_config,
            "counts": counts,
        }

    def posterior_samples(
        self,
        n_samples: int = 100,
        seed: int = 0,
        return_sites: Sequence[str] | None = None,
    ) -> dict[str, np.ndarray]:
        """Draws of every parameter from the guide, with the derived ones.

        Parameters
        ----------
        n_samples : int
        seed : int
        return_sites : sequence of str, optional
            Sites to keep (default: every sampled and derived parameter). Per
            cell and gene values (a VAE's ``mu``) take ``n_samples x n_cells x
            n_genes`` floats.

        Returns
        -------
        dict
            ``{site: [n_samples, ...]}``.
        """
        if int(n_samples) < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples!r}")
        key_guide, key_model = jax.random.split(jax.random.PRNGKey(seed))
        sizes = self._sizes(self.counts)
        latent = Predictive(
            self.guide_fn, params=self.params, num_samples=int(n_samples)
        )(key_guide, **sizes)
        derived = Predictive(
            self.model_fn, posterior_samples=latent, params=self.params
        )(key_model, **sizes)
        draws = {**latent, **derived}
        keep = set(draws) - {"counts"} if return_sites is None else set(return_sites)
        unknown = keep - set(draws)
        if unknown:
            raise ValueError(
                f"return_sites {sorted(unknown)} are not sites of the model; "
                f"sites: {sorted(set(draws) - {'counts'})}"
            )
        return {k: np.asarray(v) for k, v in draws.items() if k in keep}

    def posterior_mean(self, n_samples: int = 200, seed: int = 0) -> dict[str, Any]:
        """Posterior means of the parameters (Monte Carlo over the guide)."""
        draws = self.posterior_samples(n_samples, seed)
        return {k: v.mean(axis=0) for k, v in draws.items()}

    def posterior_predictive(self, n_samples: int = 10, seed: int = 0) -> np.ndarray:
        """Replicated count matrices ``[n_samples, n_cells, n_genes]``.

        Each replicate draws the parameters from the guide, then the counts from
        the model given them.
        """
        draws = self.posterior_samples(n_samples, seed)
        predictive = Predictive(
            self.model_fn,
            posterior_samples=draws,
            params=self.params,
            return_sites=["counts"],
        )
        key = jax.random.fold_in(jax.random.PRNGKey(seed), 1)
        return np.asarray(predictive(key, **self._sizes(None))["counts"])

    def final_loss(self, fraction: float = 0.05) -> float:
        """Mean negative ELBO over the last ``fraction`` of the steps."""
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
        tail = max(1, round(fraction * self.loss_history.size))
        return float(np.mean(self.loss_history[-tail:]))

    def plot_loss(self, path: str | os.PathLike) -> Path:
        """Write the loss curve (negative ELBO per step) as a PNG."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        losses = self.loss_history
        excess = losses - losses.min() + 1.0  # log scale down to the best step
        figure, axis = plt.subplots(figsize=(6, 3.5))
        steps = np.arange(1, losses.size + 1)
        axis.plot(steps, excess, lw=0.6, alpha=0.5)
        window = max(1, losses.size // 50)
        smooth = np.convolve(excess, np.ones(window) / window, mode="valid")
        axis.plot(steps[window - 1 :], smooth, lw=1.5)
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("SVI step")
        axis.set_ylabel(f"negative ELBO - {losses.min():.6g} + 1")
        axis.set_title(f"{self.model} / {self.parameterization} / {self.guide}")
        try:
            return atomic_savefig(figure, path)
        finally:
            plt.close(figure)
