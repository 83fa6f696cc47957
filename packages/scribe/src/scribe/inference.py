"""``scribe.fit``: stochastic variational inference of a standard count model.

The model and guide come from :func:`scribe.models.presets.standard_model`;
SVI runs numpyro's ``Trace_ELBO`` with an optax optimizer. The sizes
(``n_cells``, ``n_genes``, ``batch_size``, the model configuration) are static
keyword arguments of numpyro's ``SVI``; the counts are an argument of the
jitted step, never a constant closed over, so one compilation serves the whole
run. Steps run in ``lax.scan`` chunks, with a progress bar between chunks.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from numpyro.infer import SVI, Trace_ELBO
from numpyro.optim import optax_to_numpyro
from tqdm.auto import tqdm

from scribe.models.builders.model_builder import ModelConfig
from scribe.models.presets import standard_model
from scribe.results import ScribeResults

STEPS_PER_CHUNK = 100


def check_count_matrix(counts: Any, name: str = "counts") -> np.ndarray:
    """``counts`` as a float32 ``[cells, genes]`` array of non-negative integers.

    Raises
    ------
    ValueError
        If it is not 2-D, is empty, or holds negative, non-integer or non-finite
        values.
    """
    array = np.asarray(counts)
    if array.ndim != 2 or 0 in array.shape:
        raise ValueError(
            f"{name} must be a non-empty 2-D [cells, genes] matrix, got shape "
            f"{array.shape}"
        )
    if not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"{name} must be numeric, got dtype {array.dtype}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} holds non-finite values")
    if np.any(array < 0) or np.any(array != np.round(array)):
        raise ValueError(f"{name} must hold non-negative integer counts")
    return array.astype(np.float32)


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or int(value) != value or int(value) < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def fit(
    counts: Any,
    model: str = "nbdm",
    parameterization: str = "canonical",
    guide: str = "mean_field",
    n_components: int | None = None,
    n_steps: int = 5_000,
    batch_size: int | None = None,
    learning_rate: float = 0.1,
    seed: int = 0,
    progress: bool = True,
    guide_rank: int = 8,
    latent_dim: int = 8,
    hidden_dims: tuple[int, ...] = (64,),
) -> ScribeResults:
    """Fit a standard model to a UMI count matrix by SVI.

    Parameters
    ----------
    counts : array_like
        ``[cells, genes]`` non-negative integer counts.
    model : {"nbdm", "zinb", "nbvcp", "zinbvcp"}
        Negative binomial, zero-inflated, variable capture, both.
    parameterization : {"canonical", "linked", "odds_ratio"}
        ``(p, r)``, ``(p, mu)`` or ``(phi, mu)``.
    guide : {"mean_field", "low_rank", "amortized", "vae"}
        The variational family (see :func:`scribe.models.presets.standard_model`).
    n_components : int, optional
        Mixture components.
    n_steps : int
        SVI steps.
    batch_size : int, optional
        Cells per minibatch (``None``: all cells every step).
    learning_rate : float
        Adam's initial step size; it decays along a cosine to a tenth of itself
        at the last step (large early steps contract the tight posteriors of
        global parameters, small late ones settle the per-gene ones).
    seed : int
        Seed of the SVI run (same seed, same result).
    progress : bool
        Show a progress bar.
    guide_rank, latent_dim, hidden_dims
        Sizes of the low-rank, VAE and amortized guides.

    Returns
    -------
    ScribeResults
        Parameters, loss history, posterior samples and predictive.

    Raises
    ------
    ValueError
        For bad counts or settings (the message names the argument).
    FloatingPointError
        If the loss becomes non-finite (the message gives the step).
    """
    data = check_count_matrix(counts)
    n_cells, n_genes = data.shape
    n_steps = _positive_int("n_steps", n_steps)
    if batch_size is not None:
        batch_size = _positive_int("batch_size", batch_size)
        if batch_size > n_cells:
            raise ValueError(
                f"batch_size must be at most n_cells = {n_cells}, got {batch_size}"
            )
    if not (math.isfinite(learning_rate) and learning_rate > 0):
        raise ValueError(f"learning_rate must be positive, got {learning_rate!r}")
    model_fn, guide_fn, specs = standard_model(
        model,
        parameterization,
        guide,
        n_components=n_components,
        n_genes=n_genes,
        guide_rank=guide_rank,
        latent_dim=latent_dim,
        hidden_dims=hidden_dims,
    )
    config = ModelConfig(n_components=n_components)
    sizes = {
        "n_cells": n_cells,
        "n_genes": n_genes,
        "model_config": config,
        "batch_size": batch_size,
    }
    svi = SVI(
        model_fn,
        guide_fn,
        optax_to_numpyro(
            optax.adam(optax.cosine_decay_schedule(learning_rate, n_steps, 0.1))
        ),
        Trace_ELBO(),
        **sizes,
    )
    device_counts = jnp.asarray(data)
    state = svi.init(jax.random.PRNGKey(seed), counts=device_counts)

    @partial(jax.jit, static_argnums=2)
    def run_chunk(state: Any, counts: jax.Array, length: int) -> Any:
        def step(state: Any, _: None) -> tuple[Any, jax.Array]:
            return svi.update(state, counts=counts)

        return jax.lax.scan(step, state, None, length=length)

    losses: list[np.ndarray] = []
    with tqdm(total=n_steps, disable=not progress, desc=f"scribe {model}") as bar:
        done = 0
        while done < n_steps:
            length = min(STEPS_PER_CHUNK, n_steps - done)  # at most two compiles
            state, chunk = run_chunk(state, device_counts, length)
            chunk = np.asarray(chunk)
            bad = np.flatnonzero(~np.isfinite(chunk))
            if bad.size:
                raise FloatingPointError(
                    f"the loss became non-finite at step {done + int(bad[0])}; "
                    "lower learning_rate or check the counts"
                )
            losses.append(chunk)
            done += chunk.size
            bar.update(chunk.size)
            bar.set_postfix(loss=f"{float(chunk[-1]):.4g}")
    return ScribeResults(
        model=model,
        parameterization=parameterization,
        guide=guide,
        n_components=n_components,
        n_cells=n_cells,
        n_genes=n_genes,
        params=dict(svi.get_params(state)),
        loss_history=np.concatenate(losses),
        model_fn=model_fn,
        guide_fn=guide_fn,
        specs=specs,
        counts=data,
    )
