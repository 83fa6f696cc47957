"""scvi-tools' peer of ``bench_atlas.py``: SCVI epochs and peak memory on a .h5ad.

Run with the interpreter of a separate environment that has scvi-tools (and
PyTorch): it reads the atlas with ``anndata.read_h5ad`` (CSR ``X``, kept sparse;
scvi-tools densifies each minibatch), ``scvi.model.SCVI.setup_anndata(adata)``,
``SCVI(adata, gene_likelihood="nb", n_latent, n_hidden)`` and trains on the CPU
on all cells (``train_size=1.0``, no validation, no early stopping) with the
given batch size. A Lightning callback records the seconds of every epoch and
the process's peak RSS at its end. Writes a JSON record (atomically).

Usage::

    .venv-scvi/bin/python scvi_atlas.py --h5ad atlas.h5ad --out scvi.json
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import anndata
import lightning.pytorch as pl
import torch
from harness import (
    current_rss_gb,
    peak_rss_gb,
    summarize,
    versions,
    write_json_atomic,
)
from scvi_train import last_elbo_train, train_scvi


class EpochRecorder(pl.Callback):
    """Wall-clock seconds and peak RSS (GB) at the end of every training epoch."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.peak_rss_gb: list[float] = []
        self._start = 0.0

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        """Start the clock."""
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        """Record the epoch's seconds and the peak RSS so far."""
        self.seconds.append(time.perf_counter() - self._start)
        self.peak_rss_gb.append(peak_rss_gb())


def main(argv: Sequence[str] | None = None) -> int:
    """Train SCVI on the atlas, time its epochs, write the JSON record."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--h5ad", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=4, help=">= 2, first warm-up")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--n-latent", type=int, default=8)
    parser.add_argument("--n-hidden", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be >= 2 (the first is warm-up)")

    rss_import = current_rss_gb()
    start = time.perf_counter()
    adata = anndata.read_h5ad(args.h5ad)
    read_s = time.perf_counter() - start
    rss_read = current_rss_gb()
    recorder = EpochRecorder()
    model, setup_s, train_s = train_scvi(
        adata,
        n_latent=args.n_latent,
        n_hidden=args.n_hidden,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        callbacks=[recorder],
    )
    write_json_atomic(
        args.out,
        {
            "model": (
                f"scvi.model.SCVI(gene_likelihood='nb', n_latent={args.n_latent}, "
                f"n_hidden={args.n_hidden}), train_size=1.0, CPU"
            ),
            "x_format": type(adata.X).__name__,
            "cells": int(adata.n_obs),
            "genes": int(adata.n_vars),
            "batch_size": args.batch_size,
            "epochs": args.epochs,
            "first_epoch_s": recorder.seconds[0],
            "epoch_s": summarize(recorder.seconds[1:]),
            "read_s": read_s,
            "setup_s": setup_s,
            "train_s": train_s,
            "rss_after_import_gb": rss_import,
            "rss_after_read_gb": rss_read,
            "peak_rss_by_epoch_gb": recorder.peak_rss_gb,
            "peak_rss_gb": peak_rss_gb(),
            "last_elbo_train": last_elbo_train(model),
            "torch_threads": torch.get_num_threads(),
            "versions": versions(
                ("scvi-tools", "torch", "lightning", "anndata", "numpy", "scipy")
            ),
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
