"""Training loop of :class:`~tfmpe.estimators.flow_matching.FlowMatchingEstimator`.

One optax step is jitted once per layout. A static dataset (one ``Tokens``
with a leading sample axis) is shuffled every epoch and an epoch runs as one
``lax.scan`` over its batches (the last partial batch is dropped); a
:class:`~tfmpe.preprocessing.generation.TokenGenerator` is iterated in Python,
one jitted step per batch (give it ``drop_last=True`` so every batch has one
shape). Validation loss uses fixed noise, so epochs are comparable; the best
parameters (by validation loss, else training loss) are kept, and training
stops after ``patience`` epochs without an improvement of ``min_delta``.
``checkpoint`` writes the model, the optimizer state and the history after
every epoch (atomically); ``resume=True`` continues from it.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array
from tqdm.auto import tqdm

from tfmpe.preprocessing.generation import TokenGenerator
from tfmpe.preprocessing.tokens import Tokens
from tfmpe.rng import as_rng_key

if TYPE_CHECKING:
    from tfmpe.estimators.flow_matching import FlowMatchingEstimator


class FitHistory(NamedTuple):
    """Per-epoch record of a fit.

    Attributes
    ----------
    train_loss : np.ndarray
        Mean training loss of each epoch.
    val_loss : np.ndarray
        Validation loss after each epoch (NaN without validation data).
    epoch_seconds : np.ndarray
        Wall time of each epoch (compilation included in the first).
    best_epoch : int
        Epoch whose parameters the estimator holds (0-based).
    stopped_early : bool
        Whether patience ran out before ``epochs``.
    """

    train_loss: np.ndarray
    val_loss: np.ndarray
    epoch_seconds: np.ndarray
    best_epoch: int
    stopped_early: bool


def _epoch_batches(tokens: Tokens, batch_size: int, rng_key: Array) -> Tokens:
    """Shuffled ``(n_batches, batch_size, ...)`` leaves; the remainder dropped."""
    n = tokens.sample_shape[0]
    n_batches = n // batch_size
    order = jax.random.permutation(rng_key, n)[: n_batches * batch_size]
    return jax.tree.map(
        lambda leaf: leaf[order].reshape(n_batches, batch_size, *leaf.shape[1:]),
        tokens,
    )


def _check_train(train: Any, batch_size: int) -> None:
    if isinstance(train, TokenGenerator):
        return
    if not isinstance(train, Tokens):
        raise TypeError(
            f"train must be a Tokens dataset or a TokenGenerator, got "
            f"{type(train).__name__}"
        )
    if len(train.sample_shape) != 1:
        raise ValueError(
            f"train must have one sample axis, got sample shape {train.sample_shape}"
        )
    if train.sample_shape[0] < batch_size:
        raise ValueError(
            f"batch_size ({batch_size}) exceeds the {train.sample_shape[0]} "
            "training samples"
        )
    bad = int(jnp.sum(~jnp.isfinite(train.data) & train.padding_mask[..., None]))
    if bad:
        raise ValueError(f"train holds {bad} non-finite values (NaN or inf)")


def fit(
    estimator: FlowMatchingEstimator,
    train: Tokens | TokenGenerator,
    *,
    val: Tokens | None = None,
    epochs: int = 100,
    batch_size: int = 256,
    learning_rate: float = 1e-3,
    optimizer: optax.GradientTransformation | None = None,
    patience: int | None = 20,
    min_delta: float = 0.0,
    rng_key: Array | int = 0,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
) -> FitHistory:
    """Fit ``estimator`` by flow matching; its parameters become the best epoch's.

    Parameters
    ----------
    estimator : FlowMatchingEstimator
    train : Tokens or TokenGenerator
        A static dataset (one sample axis) or a generator of batches.
    val : Tokens, optional
        Validation data (one sample axis).
    epochs : int
        Passes over ``train``.
    batch_size : int
        Samples per step (static datasets; a generator has its own).
    learning_rate : float
        Of the default optimizer, AdamW with gradients clipped to norm 1 and a
        cosine decay over the planned steps.
    optimizer : optax.GradientTransformation, optional
        Replaces the default.
    patience : int or None
        Epochs without improvement before stopping; None never stops early.
    min_delta : float
        Smallest improvement that counts.
    rng_key : jax.Array or int
    checkpoint : path, optional
        File rewritten after every epoch with everything needed to resume.
    resume : bool
        Continue from ``checkpoint`` (which must exist and match the model).
    progress : bool
        Show a progress bar.

    Returns
    -------
    FitHistory

    Raises
    ------
    TypeError, ValueError
        For arguments that cannot be used, naming them.
    FloatingPointError
        If the training loss becomes NaN or inf (lower ``learning_rate``).
    """
    from tfmpe.estimators.checkpoint import (
        check_checkpoint_path,
        load_training_state,
        save_training_state,
    )

    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if not (isinstance(learning_rate, (int, float)) and learning_rate > 0):
        raise ValueError(
            f"learning_rate must be a positive float, got {learning_rate!r}"
        )
    if patience is not None and (not isinstance(patience, int) or patience < 1):
        raise ValueError(f"patience must be None or a positive int, got {patience!r}")
    _check_train(train, batch_size)
    if val is not None:
        _check_train(val, 1)
    if resume and checkpoint is None:
        raise ValueError("resume=True needs a checkpoint path")
    if checkpoint is not None:
        checkpoint = check_checkpoint_path(checkpoint, must_exist=resume)
    rng_key = as_rng_key(rng_key)

    steps_per_epoch = (
        len(train)
        if isinstance(train, TokenGenerator)
        else train.sample_shape[0] // batch_size
    )
    if optimizer is None:
        schedule = optax.cosine_decay_schedule(
            learning_rate, max(1, epochs * steps_per_epoch), alpha=0.05
        )
        optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(schedule))
    params = estimator.params
    opt_state = optimizer.init(params)
    history: dict[str, list[float]] = {"train": [], "val": [], "seconds": []}
    best = (math.inf, params, -1)
    start_epoch = 0
    if resume:
        params, opt_state, history, best, start_epoch, rng_key = load_training_state(
            checkpoint, estimator, params, opt_state
        )

    def step(carry, batch):
        params, opt_state, carry_rng_key = carry
        carry_rng_key, loss_rng_key = jax.random.split(carry_rng_key)
        loss, grads = jax.value_and_grad(estimator.loss)(params, batch, loss_rng_key)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state, carry_rng_key), loss

    jit_step = jax.jit(step)
    jit_epoch = jax.jit(lambda carry, batches: jax.lax.scan(step, carry, batches))
    val_rng_key = jax.random.key(12345)
    jit_val = jax.jit(estimator.loss)

    def validation(params) -> float:
        n = val.sample_shape[0]
        total = 0.0
        for i, begin in enumerate(range(0, n, batch_size)):
            chunk = jax.tree.map(lambda leaf, b=begin: leaf[b : b + batch_size], val)
            size = chunk.sample_shape[0]
            total += (
                float(jit_val(params, chunk, jax.random.fold_in(val_rng_key, i))) * size
            )
        return total / n

    bar = tqdm(
        range(start_epoch, epochs), disable=not progress, desc="fit", unit="epoch"
    )
    stopped_early = False
    for epoch in bar:
        tic = time.perf_counter()
        epoch_rng_key = jax.random.fold_in(rng_key, epoch)
        if isinstance(train, TokenGenerator):
            carry, losses = (params, opt_state, epoch_rng_key), []
            for batch in train:
                carry, loss = jit_step(carry, batch)
                losses.append(loss)
            params, opt_state, _ = carry
            train_loss = float(jnp.mean(jnp.stack(losses)))
        else:
            batches = _epoch_batches(train, batch_size, epoch_rng_key)
            (params, opt_state, _), losses = jit_epoch(
                (params, opt_state, jax.random.fold_in(epoch_rng_key, 1)), batches
            )
            train_loss = float(jnp.mean(losses))
        if not math.isfinite(train_loss):
            raise FloatingPointError(
                f"the training loss became {train_loss} in epoch {epoch}; lower "
                f"learning_rate (got {learning_rate}) or check the data"
            )
        val_loss = validation(params) if val is not None else math.nan
        history["train"].append(train_loss)
        history["val"].append(val_loss)
        history["seconds"].append(time.perf_counter() - tic)
        score = val_loss if val is not None else train_loss
        if score < best[0] - min_delta:
            best = (score, params, epoch)
        bar.set_postfix(train=f"{train_loss:.4f}", val=f"{val_loss:.4f}")
        if checkpoint is not None:
            save_training_state(
                checkpoint,
                estimator,
                params,
                opt_state,
                history,
                best,
                epoch + 1,
                rng_key,
            )
        if patience is not None and epoch - best[2] >= patience:
            stopped_early = True
            break
    estimator.params = best[1]
    return FitHistory(
        train_loss=np.asarray(history["train"]),
        val_loss=np.asarray(history["val"]),
        epoch_seconds=np.asarray(history["seconds"]),
        best_epoch=int(best[2]),
        stopped_early=stopped_early,
    )
