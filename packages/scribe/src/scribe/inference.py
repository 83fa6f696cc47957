"""``scribe.fit``: stochastic variational inference of a standard count model.

:func:`fit` checks the data (:func:`scribe.data.as_count_data`) and the
settings (:class:`scribe.config.FitConfig`), builds the model and guide with
:func:`scribe.models.presets.standard_model` and runs :func:`run_svi`:
numpyro's ``Trace_ELBO`` (``num_particles`` draws, vectorized) with optax's
Adam on a cosine-decayed (or constant) step size.

Full-batch runs put the dense counts on the device once. Minibatch runs keep
sparse counts as CSR arrays and densify each batch inside the jitted step
(:func:`scribe.data.densify_rows`); the batches are the cells of a fresh
permutation per epoch (``n_cells // batch_size`` steps, the remainder
dropped), drawn on the host from the seed, so dense and sparse inputs give the
same fit. Steps run in ``lax.scan`` chunks (one compilation for all chunks of
the same length), with a progress bar between chunks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from numpyro.infer import SVI, Trace_ELBO
from numpyro.optim import optax_to_numpyro
from tqdm.auto import tqdm

from scribe.config import FitConfig
from scribe.data import CountData, as_count_data, densify_rows, to_device
from scribe.models.builders.model_builder import ModelConfig
from scribe.models.presets import standard_model
from scribe.results import ScribeResults

STEPS_PER_CHUNK = 100


class SVIRun(NamedTuple):
    """What :func:`run_svi` returns.

    Attributes
    ----------
    params : dict
        The guide's (constrained) parameters, and the networks' for
        amortized and VAE guides.
    loss_history : numpy array
        Negative ELBO per step (of the minibatch, scaled to all cells).
    """

    params: dict[str, Any]
    loss_history: np.ndarray


def batch_indices(
    n_cells: int, batch_size: int, n_steps: int, seed: int
) -> Iterator[np.ndarray]:
    """Cell indices of every step: epochs of shuffled cells, remainder dropped.

    Yields
    ------
    numpy array
        ``int32[batch_size]`` per step, ``n_steps`` times.
    """
    rng = np.random.default_rng(seed)
    per_epoch = n_cells // batch_size
    step = 0
    while step < n_steps:
        order = rng.permutation(n_cells).astype(np.int32)
        for b in range(min(per_epoch, n_steps - step)):
            yield order[b * batch_size : (b + 1) * batch_size]
        step += per_epoch


def optimizer(config: FitConfig) -> Any:
    """Adam on the configured schedule (cosine: to a tenth at the last step).

    The networks' weights (amortizers, VAE encoder and decoder: the
    ``{name}$params`` sites) step at ``network_learning_rate``, the guide's
    distribution parameters at ``learning_rate``: a step of 0.1 that contracts
    a global posterior quickly makes a network's first steps diverge.
    """

    def adam(rate: float) -> optax.GradientTransformation:
        if config.schedule == "cosine":
            return optax.adam(optax.cosine_decay_schedule(rate, config.n_steps, 0.1))
        return optax.adam(rate)

    return optax_to_numpyro(
        optax.multi_transform(
            {
                "distribution": adam(config.learning_rate),
                "network": adam(config.network_learning_rate),
            },
            lambda params: {
                name: "network" if name.endswith("$params") else "distribution"
                for name in params
            },
        )
    )


def run_svi(
    model_fn: Callable[..., None],
    guide_fn: Callable[..., None],
    data: CountData,
    config: FitConfig,
    progress: bool = False,
) -> SVIRun:
    """Run SVI of ``model_fn`` / ``guide_fn`` on ``data`` with ``config``'s settings.

    Parameters
    ----------
    model_fn, guide_fn : callable
        A model and guide with the builders' signature
        ``(n_cells, n_genes, model_config, counts, batch_size, cell_indices)``.
    data : CountData
        The counts (see :func:`scribe.data.as_count_data`).
    config : FitConfig
        ``n_steps``, ``batch_size``, the learning rates, ``num_particles``,
        ``schedule``, ``seed`` and ``n_components`` are read.
    progress : bool
        Show a progress bar.

    Returns
    -------
    SVIRun

    Raises
    ------
    ValueError
        If ``batch_size`` exceeds the number of cells.
    MemoryError
        If full-batch fitting of sparse counts cannot densify them.
    FloatingPointError
        If the loss becomes non-finite (the message gives the step).
    """
    n_cells, n_genes = data.shape
    batched = config.batch_size is not None
    if batched and config.batch_size > n_cells:
        raise ValueError(
            f"batch_size must be at most n_cells = {n_cells}, got {config.batch_size}"
        )
    svi = SVI(
        model_fn,
        guide_fn,
        optimizer(config),
        Trace_ELBO(num_particles=config.num_particles, vectorize_particles=True),
        n_cells=n_cells,
        n_genes=n_genes,
        model_config=ModelConfig(n_components=config.n_components),
    )
    source = to_device(data, dense=not batched)
    batches = (
        batch_indices(n_cells, config.batch_size, config.n_steps, config.seed)
        if batched
        else None
    )

    def step(state: Any, index: jax.Array | None) -> tuple[Any, jax.Array]:
        if index is None:
            return svi.update(state, counts=source)
        return svi.update(state, counts=densify_rows(source, index), cell_indices=index)

    @partial(jax.jit, static_argnums=2)
    def run_chunk(state: Any, indices: jax.Array | None, length: int) -> Any:
        return jax.lax.scan(step, state, indices, length=length)

    def chunk_indices(length: int) -> jax.Array | None:
        if batches is None:
            return None
        return jnp.asarray(np.stack([next(batches) for _ in range(length)]))

    rng_key = jax.random.PRNGKey(config.seed)
    first = chunk_indices(min(STEPS_PER_CHUNK, config.n_steps))
    init_kwargs = (
        {"counts": source}
        if first is None
        else {"counts": densify_rows(source, first[0]), "cell_indices": first[0]}
    )
    state = svi.init(rng_key, **init_kwargs)
    losses: list[np.ndarray] = []
    done = 0
    with tqdm(total=config.n_steps, disable=not progress, desc="scribe SVI") as bar:
        while done < config.n_steps:
            length = min(STEPS_PER_CHUNK, config.n_steps - done)  # two compiles
            indices = first if done == 0 else chunk_indices(length)
            state, chunk = run_chunk(state, indices, length)
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
    return SVIRun(dict(svi.get_params(state)), np.concatenate(losses))


def fit(
    data: Any,
    model: str = "nbdm",
    parameterization: str = "canonical",
    guide: str = "mean_field",
    *,
    layer: str | None = None,
    n_components: int | None = None,
    n_steps: int = 5_000,
    batch_size: int | None = None,
    learning_rate: float = 0.1,
    network_learning_rate: float = 0.01,
    num_particles: int = 1,
    schedule: str = "cosine",
    seed: int = 0,
    progress: bool = True,
    global_guide: str = "mean_field",
    mixture_params: str | Sequence[str] = "all",
    capture_param_name: str | None = None,
    guide_rank: int = 8,
    latent_dim: int = 8,
    hidden_dims: Sequence[int] = (64,),
) -> ScribeResults:
    """Fit a standard model to a UMI count matrix by SVI.

    Parameters
    ----------
    data : AnnData, numpy array or scipy sparse matrix
        ``[cells, genes]`` non-negative integer counts; an AnnData's ``X`` or
        ``layers[layer]``. Sparse counts stay sparse (see the module notes).
    model : {"nbdm", "zinb", "nbvcp", "zinbvcp"}
        Negative binomial, zero-inflated, variable capture, both.
    parameterization : {"canonical", "linked", "odds_ratio"}
        ``(p, r)``, ``(p, mu)`` or ``(phi, mu)``.
    guide : {"mean_field", "low_rank", "amortized", "vae"}
        The variational family (see :func:`scribe.models.presets.standard_model`).
    layer : str, optional
        The AnnData layer with the raw counts (default ``X``).
    n_components : int, optional
        Mixture components.
    n_steps : int
        SVI steps.
    batch_size : int, optional
        Cells per minibatch (``None``: all cells every step).
    learning_rate : float
        Adam's initial step size for the guide's distribution parameters.
    network_learning_rate : float
        Adam's initial step size for the weights of amortizer and VAE networks.
    num_particles : int
        Draws from the guide per ELBO estimate (more: less gradient noise,
        tighter and better calibrated posteriors of the global parameters).
    schedule : {"cosine", "constant"}
        ``"cosine"`` decays the step size to a tenth of ``learning_rate`` at
        the last step (large early steps contract the tight posteriors of
        global parameters, small late ones settle them).
    seed : int
        Seed of the run, in ``[0, 2**63)`` (same seed, same result).
    progress : bool
        Show a progress bar.
    global_guide : {"mean_field", "low_rank", "full_rank"}
        ``low_rank`` / ``full_rank``: one multivariate normal over all global
        parameters (unconstrained), which captures their correlations; see
        the README on calibrated uncertainty.
    mixture_params : str or sequence of str
        Mixtures: the parameters with one value per component: ``"all"``
        (default, as upstream scribe), ``"biological"``, ``"mean"``,
        ``"prob"``, ``"gate"``, or names.
    capture_param_name : {"p_capture", "phi_capture"}, optional
        Capture models: ``p_capture ~ Beta`` or the odds ``phi_capture ~
        BetaPrime`` (default: ``phi_capture`` for ``odds_ratio``, as upstream).
    guide_rank, latent_dim, hidden_dims
        Sizes of the low-rank, VAE and amortized guides.

    Returns
    -------
    ScribeResults
        Parameters, loss history, names; posterior samples, summaries and
        predictive; ``save`` and ``to_anndata``.

    Raises
    ------
    TypeError, ValueError
        For bad data or settings (the message names the argument).
    MemoryError
        If full-batch fitting cannot densify sparse counts (use ``batch_size``).
    FloatingPointError
        If the loss becomes non-finite (the message gives the step).
    """
    config = FitConfig(
        model=model,
        parameterization=parameterization,
        guide=guide,
        n_components=n_components,
        guide_rank=guide_rank,
        latent_dim=latent_dim,
        hidden_dims=hidden_dims,
        global_guide=global_guide,
        mixture_params=mixture_params,
        capture_param_name=capture_param_name,
        n_steps=n_steps,
        batch_size=batch_size,
        learning_rate=learning_rate,
        network_learning_rate=network_learning_rate,
        num_particles=num_particles,
        schedule=schedule,
        seed=seed,
        layer=layer,
    )
    counts = as_count_data(data, layer=layer)
    model_fn, guide_fn, _ = standard_model(
        n_genes=counts.n_genes, **config.model_kwargs()
    )
    run = run_svi(model_fn, guide_fn, counts, config, progress=progress)
    return ScribeResults(
        config=config,
        params=run.params,
        loss_history=run.loss_history,
        cell_names=counts.cell_names,
        gene_names=counts.gene_names,
        data=counts,
    )
