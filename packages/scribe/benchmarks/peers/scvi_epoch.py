"""Seconds per epoch of ``scvi.model.SCVI(gene_likelihood="nb")`` on given counts.

Run by ``bench_scribe.py`` with the interpreter of a separate environment that
has scvi-tools (and PyTorch) installed, so that neither burdens scribe's own
install. It reads ``int32[cells, genes]`` counts from a ``.npy`` file, builds an
``AnnData``, trains ``SCVI`` on all cells (``train_size=1``, no validation, no
early stopping, CPU) with the given batch size, and writes a JSON record:
the seconds of every epoch (from a Lightning callback), the first epoch on its
own, the median of the others, the set-up seconds, the last training ELBO
and the versions. With ``--handshake`` it prints a marker line after every
epoch and waits for a line on stdin, so that a caller can train its own model
in turns with this one.

Usage::

    .venv-scvi/bin/python packages/scribe/benchmarks/peers/scvi_epoch.py \
        --counts counts.npy --out scvi.json
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anndata
import lightning.pytorch as pl
import numpy as np
import torch
from scvi_train import last_elbo_train, train_scvi

MARKER = "SCVI_EPOCH_DONE"


class EpochTimer(pl.Callback):
    """Wall-clock seconds of every training epoch, optionally with a handshake.

    Parameters
    ----------
    handshake : bool
        After every epoch, print :data:`MARKER` and wait for a line on stdin.
    """

    def __init__(self, handshake: bool) -> None:
        self.times: list[float] = []
        self.handshake = handshake
        self._start = 0.0

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        """Start the clock."""
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        """Record the epoch's seconds; with the handshake, signal and wait."""
        self.times.append(time.perf_counter() - self._start)
        if self.handshake:
            print(MARKER, flush=True)
            sys.stdin.readline()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--counts", type=Path, required=True, help=".npy counts")
    parser.add_argument("--out", type=Path, required=True, help="JSON to write")
    parser.add_argument("--epochs", type=int, default=4, help="epochs, >= 2")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--n-latent", type=int, default=8)
    parser.add_argument("--n-hidden", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--handshake",
        action="store_true",
        help=f"after every epoch print {MARKER} and wait for a line on stdin",
    )
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be >= 2 (the first is warm-up)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Train SCVI, time its epochs, write the JSON record."""
    args = parse_args(argv)
    start = time.perf_counter()
    counts = np.load(args.counts).astype(np.float32)
    adata = anndata.AnnData(X=counts)
    load_s = time.perf_counter() - start
    timer = EpochTimer(args.handshake)
    model, setup_s, train_s = train_scvi(
        adata,
        n_latent=args.n_latent,
        n_hidden=args.n_hidden,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        callbacks=[timer],
    )
    setup_s += load_s
    record = {
        "model": (
            f"scvi.model.SCVI(gene_likelihood='nb', n_latent={args.n_latent}, "
            f"n_hidden={args.n_hidden}), train_size=1.0"
        ),
        "cells": int(counts.shape[0]),
        "genes": int(counts.shape[1]),
        "batch_size": args.batch_size,
        "epoch_s": timer.times,
        "first_epoch_s": timer.times[0],
        "median_epoch_s": statistics.median(timer.times[1:]),
        "setup_s": setup_s,
        "train_s": train_s,
        "last_elbo_train": last_elbo_train(model),
        "torch_threads": torch.get_num_threads(),
        "versions": {
            name: importlib.metadata.version(name)
            for name in ("scvi-tools", "torch", "lightning", "anndata", "numpy")
        },
    }
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
