"""Seconds per epoch of ``scvi.model.SCVI(gene_likelihood="nb")`` on given counts.

Run by ``bench_scribe.py`` with the interpreter of a separate environment that
has scvi-tools (and PyTorch) installed, so that neither burdens scribe's own
install. It reads ``int32[cells, genes]`` counts from a ``.npy`` file, builds an
``AnnData``, trains ``SCVI`` on all cells (``train_size=1``, no validation, no
early stopping, CPU) with the given batch size, and prints a JSON record
(``harness.print_record``: the driver writes the results):
the seconds of every epoch (from a Lightning callback), the first epoch on its
own, the median of the others, the set-up seconds, the last training ELBO
and the versions. With ``--handshake`` it prints a marker line after every
epoch and waits for a line on stdin, so that a caller can train its own model
in turns with this one.

Usage::

    .venv-scvi/bin/python packages/scribe/benchmarks/peers/scvi_epoch.py \
        --counts counts.npy
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import anndata
import numpy as np
from harness import EPOCH_MARKER, print_record
from scvi_train import EpochClock, parse_training_args, train_and_describe


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--counts", type=Path, required=True, help=".npy counts")
    parser.add_argument(
        "--handshake",
        action="store_true",
        help=f"after every epoch print {EPOCH_MARKER} and wait for a line on stdin",
    )
    return parse_training_args(parser, 512, argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Train SCVI, time its epochs, print the JSON record."""
    args = parse_args(argv)
    start = time.perf_counter()
    counts = np.load(args.counts).astype(np.float32)
    adata = anndata.AnnData(X=counts)
    load_s = time.perf_counter() - start
    clock = EpochClock(args.handshake)
    record = train_and_describe(adata, args, clock)
    record["setup_s"] += load_s
    record |= {
        "epoch_s": clock.seconds,
        "first_epoch_s": clock.seconds[0],
        "median_epoch_s": statistics.median(clock.seconds[1:]),
    }
    print_record(record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
