"""SCVI's options, set-up, training and epoch clock for the scvi-tools peers.

Imported by those scripts under the scvi-tools interpreter (their folder and
the benchmarks' folder are on ``sys.path``): ``SCVI(adata, gene_likelihood="nb",
n_latent, n_hidden)`` trained on the CPU on all cells (``train_size=1.0``, no
validation, no early stopping), every epoch timed by :class:`EpochClock`.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

import lightning.pytorch as pl
import scvi
import torch
from harness import EPOCH_MARKER, peak_rss_gb, versions


class EpochClock(pl.Callback):
    """Seconds and peak RSS (GB) at the end of every epoch, optionally a handshake.

    Parameters
    ----------
    handshake : bool
        After every epoch, print ``harness.EPOCH_MARKER`` and wait for a line on stdin.
    """

    def __init__(self, handshake: bool = False) -> None:
        self.seconds: list[float] = []
        self.peak_rss_gb: list[float] = []
        self.handshake = handshake
        self._start = 0.0

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        """Start the clock."""
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        """Record the epoch's seconds and peak RSS; with the handshake, wait."""
        self.seconds.append(time.perf_counter() - self._start)
        self.peak_rss_gb.append(peak_rss_gb())
        if self.handshake:
            print(EPOCH_MARKER, flush=True)
            sys.stdin.readline()


def parse_training_args(
    parser: argparse.ArgumentParser,
    batch_size: int,
    argv: Sequence[str] | None = None,
) -> argparse.Namespace:
    """Add ``--epochs``, ``--batch-size``, SCVI's sizes and ``--seed``; parse.

    ``--epochs`` counts the first (warm-up) epoch and must be >= 2.
    """
    parser.add_argument("--epochs", type=int, default=4, help=">= 2, first warm-up")
    parser.add_argument("--batch-size", type=int, default=batch_size)
    parser.add_argument("--n-latent", type=int, default=8)
    parser.add_argument("--n-hidden", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be >= 2 (the first is warm-up)")
    return args


def train_and_describe(
    adata: Any, args: argparse.Namespace, clock: EpochClock
) -> dict[str, Any]:
    """Train SCVI on ``adata`` (:func:`train_scvi`); the record both peers report.

    Returns
    -------
    dict
        The model call, sizes, ``setup_s``, ``train_s``, the last training ELBO,
        torch's threads and the versions; the epochs are in ``clock``.
    """
    model, setup_s, train_s = train_scvi(adata, args, [clock])
    return {
        "model": (
            f"scvi.model.SCVI(gene_likelihood='nb', n_latent={args.n_latent}, "
            f"n_hidden={args.n_hidden}), train_size=1.0, CPU"
        ),
        "cells": int(adata.n_obs),
        "genes": int(adata.n_vars),
        "batch_size": args.batch_size,
        "epochs": args.epochs,
        "setup_s": setup_s,
        "train_s": train_s,
        "last_elbo_train": last_elbo_train(model),
        "torch_threads": torch.get_num_threads(),
        "versions": versions(
            ("scvi-tools", "torch", "lightning", "anndata", "numpy", "scipy")
        ),
    }


def train_scvi(
    adata: Any, args: argparse.Namespace, callbacks: list[Any]
) -> tuple[Any, float, float]:
    """Set up and train SCVI on ``adata`` with :func:`parse_training_args`' options.

    Returns
    -------
    model : scvi.model.SCVI
    setup_s : float
        Seconds of ``setup_anndata`` and the model's construction.
    train_s : float
        Seconds of ``model.train``.
    """
    scvi.settings.seed = args.seed
    start = time.perf_counter()
    scvi.model.SCVI.setup_anndata(adata)
    model = scvi.model.SCVI(
        adata, gene_likelihood="nb", n_latent=args.n_latent, n_hidden=args.n_hidden
    )
    setup_s = time.perf_counter() - start
    start = time.perf_counter()
    model.train(
        max_epochs=args.epochs,
        accelerator="cpu",
        devices=1,
        train_size=1.0,
        batch_size=args.batch_size,
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
