"""scvi-tools' peer of ``bench_atlas.py``: SCVI epochs and peak memory on a .h5ad.

Run with the interpreter of a separate environment that has scvi-tools (and
PyTorch): it reads the atlas with ``anndata.read_h5ad`` (CSR ``X``, kept sparse;
scvi-tools densifies each minibatch), ``scvi.model.SCVI.setup_anndata(adata)``,
``SCVI(adata, gene_likelihood="nb", n_latent, n_hidden)`` and trains on the CPU
on all cells (``train_size=1.0``, no validation, no early stopping) with the
given batch size. A Lightning callback records the seconds of every epoch and
the process's peak RSS at its end. Prints a JSON record
(``harness.print_record``: the driver writes the results).

Usage::

    .venv-scvi/bin/python scvi_atlas.py --h5ad atlas.h5ad
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import anndata
from harness import current_rss_gb, peak_rss_gb, print_record, summarize
from scvi_train import EpochClock, parse_training_args, train_and_describe


def main(argv: Sequence[str] | None = None) -> int:
    """Train SCVI on the atlas, time its epochs, print the JSON record."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--h5ad", type=Path, required=True)
    args = parse_training_args(parser, 128, argv)

    rss_import = current_rss_gb()
    start = time.perf_counter()
    adata = anndata.read_h5ad(args.h5ad)
    read_s = time.perf_counter() - start
    rss_read = current_rss_gb()
    clock = EpochClock()
    record = train_and_describe(adata, args, clock)
    record |= {
        "x_format": type(adata.X).__name__,
        "first_epoch_s": clock.seconds[0],
        "epoch_s": summarize(clock.seconds[1:]),
        "read_s": read_s,
        "rss_after_import_gb": rss_import,
        "rss_after_read_gb": rss_read,
        "peak_rss_by_epoch_gb": clock.peak_rss_gb,
        "peak_rss_gb": peak_rss_gb(),
    }
    print_record(record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
