"""The SCVI set-up and training call shared by ``scvi_atlas.py`` and ``scvi_epoch.py``.

Imported by those scripts under the scvi-tools interpreter (their folder is on
``sys.path``): ``SCVI(adata, gene_likelihood="nb", n_latent, n_hidden)`` trained on
the CPU on all cells (``train_size=1.0``, no validation, no early stopping).
"""

from __future__ import annotations

import time
from typing import Any

import scvi


def train_scvi(
    adata: Any,
    *,
    n_latent: int,
    n_hidden: int,
    epochs: int,
    batch_size: int,
    seed: int,
    callbacks: list[Any],
) -> tuple[Any, float, float]:
    """Set up and train SCVI on ``adata``.

    Returns
    -------
    model : scvi.model.SCVI
    setup_s : float
        Seconds of ``setup_anndata`` and the model's construction.
    train_s : float
        Seconds of ``model.train``.
    """
    scvi.settings.seed = seed
    start = time.perf_counter()
    scvi.model.SCVI.setup_anndata(adata)
    model = scvi.model.SCVI(
        adata, gene_likelihood="nb", n_latent=n_latent, n_hidden=n_hidden
    )
    setup_s = time.perf_counter() - start
    start = time.perf_counter()
    model.train(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        train_size=1.0,
        batch_size=batch_size,
        early_stopping=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
    )
    return model, setup_s, time.perf_counter() - start


def last_elbo_train(model: Any) -> float | None:
    """The last training ELBO of ``model``'s history (``None`` if absent)."""
    elbo = model.history.get("elbo_train")
    return None if elbo is None else float(elbo.iloc[-1, 0])
