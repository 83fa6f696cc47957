"""Scale benchmark: scribe on a sparse 100,000 x 2,000 atlas against scvi-tools.

A simulated negative-binomial atlas (``scribe.datasets.simulate_atlas``) is
written once to a temporary ``.h5ad``; each contender (scribe ``nbdm``, scribe's
VAE, scvi-tools' ``SCVI`` under its own interpreter, ``peers/scvi_atlas.py``)
runs in a fresh process that reads it and prints its record (``--worker`` is
scribe's child mode); every contender is a command taking the same options
(``--h5ad --epochs --batch-size --seed``). Reported: seconds per epoch,
warm-up, peak RSS, ratios to scvi-tools and the goals; the package README
describes the method. Writes ``atlas.json`` and ``atlas.png`` into
``--out-dir``; ``--quick`` is a smoke run. Without an
scvi-tools interpreter (``harness.find_scvi_python``) that part reports
"scvi-tools not available" and scribe still runs.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402
from harness import (  # noqa: E402
    Clock,
    current_rss_gb,
    epoch_seconds,
    find_scvi_python,
    peak_rss_gb,
    print_record,
    record_progress,
    run_process,
    run_record,
    summarize,
    write_results,
)

VARIANTS: dict[str, dict[str, Any]] = {
    "nbdm": {"model": "nbdm", "parameterization": "canonical", "guide": "mean_field"},
    "vae": {
        "model": "nbdm",
        "parameterization": "linked",
        "guide": "vae",
        "latent_dim": 8,
        "hidden_dims": (64,),
    },
}
LABELS = {"nbdm": "scribe nbdm", "vae": "scribe VAE", "scvi": "scvi-tools SCVI"}
FULL = {"n_cells": 100_000, "n_genes": 2_000, "epochs": 4}
QUICK = {"n_cells": 3_000, "n_genes": 300, "epochs": 6}
MEMORY_GOAL_GB = 4.0
RESULTS_STEM = "atlas"
VERSIONED = ("jax", "jaxlib", "numpyro", "scribe", "anndata", "scipy", "numpy")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options (``--worker`` is the internal scribe child mode)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--out-dir", type=Path, default=HERE / "results")
    parser.add_argument("--scvi-python", type=Path)
    parser.add_argument("--epochs", type=int, help="epochs (>= 2, first warm-up)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--n-cells", type=int)
    parser.add_argument("--n-genes", type=int)
    parser.add_argument("--density", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", choices=sorted(VARIANTS), help=argparse.SUPPRESS)
    parser.add_argument("--h5ad", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.scvi_python = find_scvi_python(args.scvi_python)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.epochs < 2:
        parser.error("--epochs must be >= 2 (the first is warm-up)")
    if not 1 <= args.batch_size <= args.n_cells:
        parser.error(f"--batch-size must be in [1, --n-cells], got {args.batch_size}")
    return args


def contenders(scvi_python: Path | None) -> dict[str, list[str] | None]:
    """Each contender's command (``None``: scvi-tools not available).

    Every command takes ``--h5ad --epochs --batch-size --seed`` and prints
    its record (``harness.print_record``) in a fresh process.
    """
    ours = {name: [sys.executable, __file__, "--worker", name] for name in VARIANTS}
    peer = scvi_python and [str(scvi_python), str(HERE / "peers" / "scvi_atlas.py")]
    return ours | {"scvi": peer or None}


def run_worker(args: argparse.Namespace) -> int:
    """Child process: read the .h5ad, fit one scribe variant, print its record."""
    import anndata

    import scribe

    rss_import = current_rss_gb()
    with Clock() as read:
        adata = anndata.read_h5ad(args.h5ad)
    rss_read = current_rss_gb()
    steps_per_epoch = math.ceil(adata.n_obs / args.batch_size)
    module = sys.modules[scribe.fit.__module__]
    chunk = int(getattr(module, "STEPS_PER_CHUNK", 100))
    # warm-up chunk + the timed epochs, in whole chunks (a shorter last chunk
    # would compile again inside an epoch)
    n_steps = math.ceil(1 + steps_per_epoch * (args.epochs - 1) / chunk) * chunk
    marks: list[tuple[float, int]] = []
    record_progress(module, marks)
    call = VARIANTS[args.worker]
    options = {"n_steps": n_steps, "batch_size": args.batch_size, "seed": args.seed}
    with Clock() as fit:
        fitted = scribe.fit(adata, **call, **options, progress=False)
    epochs = epoch_seconds(marks, steps_per_epoch)[: args.epochs - 1]
    if epochs:
        warmup, first_s = marks[0][1], marks[0][0] - fit.start
        compile_s = first_s - warmup * statistics.median(epochs) / steps_per_epoch
    else:  # no progress marks: the whole call's mean, compile included
        epochs, warmup = [fit.seconds * steps_per_epoch / n_steps], 0
        first_s = compile_s = None
    loss = fitted.loss_history
    print_record(
        {
            "call": call,
            "timing": "progress marks" if warmup else "whole call",
            "steps_per_epoch": steps_per_epoch,
            "n_steps": n_steps,
            "warmup_steps": warmup,
            "first_call_s": first_s,
            "compile_s": compile_s,
            "epoch_s": summarize(epochs),
            "fit_s": fit.seconds,
            "read_s": read.seconds,
            "rss_after_import_gb": rss_import,
            "rss_after_read_gb": rss_read,
            "peak_rss_gb": peak_rss_gb(),
            "loss_first": float(loss[0]),
            "loss_last": float(loss[-1]),
            "loss_finite": bool(np.all(np.isfinite(loss))),
        },
    )
    return 0


def plot(record: dict[str, Any], path: Path) -> None:
    """Bars of steady seconds per epoch and peak RSS, scribe variants vs scvi."""
    import matplotlib.pyplot as plt

    from scribe.plots import save_figure  # selects the Agg backend

    runs = {k: v for k, v in record["results"].items() if "epoch_s" in v}
    names = [LABELS[k] for k in runs]
    colors = ["tab:blue" if k != "scvi" else "tab:orange" for k in runs]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.bar(names, [r["epoch_s"]["median"] for r in runs.values()], color=colors)
    ax1.plot(names, [r["epoch_s"]["min"] for r in runs.values()], "k.", label="fastest")
    ax1.set_ylabel("seconds per epoch (median)")
    ax1.legend()
    ax2.bar(names, [r["peak_rss_gb"] for r in runs.values()], color=colors)
    ax2.axhline(MEMORY_GOAL_GB, color="r", ls="--", label="goal 4 GB")
    ax2.set_ylabel("peak host memory (GB)")
    ax2.legend()
    size = record["sizes"]
    fig.suptitle(
        f"{size['n_cells']:,} cells x {size['n_genes']:,} genes, "
        f"{100 * size['density_simulated']:.1f} % non-zero, batch {size['batch_size']}"
    )
    fig.tight_layout()
    save_figure(fig, path)


def compare(results: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Ratios scribe / scvi of each variant and the goals (``None``: no scvi)."""
    scvi = results["scvi"] if "epoch_s" in results["scvi"] else None
    ours = {k: r for k, r in results.items() if k in VARIANTS and "epoch_s" in r}
    ratios = {
        k: scvi
        and {
            "epoch_median": r["epoch_s"]["median"] / scvi["epoch_s"]["median"],
            "epoch_min": r["epoch_s"]["min"] / scvi["epoch_s"]["min"],
            "peak_rss": r["peak_rss_gb"] / scvi["peak_rss_gb"],
        }
        for k, r in ours.items()
    }
    complete = len(ours) == len(VARIANTS)
    memory = {k: r["peak_rss_gb"] < MEMORY_GOAL_GB for k, r in ours.items()}
    speed = {k: v and v["epoch_median"] <= 1.0 for k, v in ratios.items()}
    goals = {
        "peak_memory_below_4gb": memory | {"met": complete and all(memory.values())},
        "not_slower_than_scvi": speed
        | {"met": scvi and (complete and all(speed.values()))},
    }
    return ratios, goals


def print_table(record: dict[str, Any]) -> None:
    """Steady epoch seconds, first epoch, peak RSS and ratio to scvi per contender."""
    print(f"\n{'':16}{'epoch s median':>15}{'min':>7}{'first':>7}{'peak GB':>8}"
          f"{'/ scvi':>7}")  # fmt: skip
    for name, r in record["results"].items():
        if "epoch_s" not in r:
            print(f"{LABELS[name]:16}  {r['error']}")
            continue
        ratio = (record["ratios_vs_scvi"].get(name) or {}).get("epoch_median")
        print(f"{LABELS[name]:16}{r['epoch_s']['median']:>15.3f}{r['epoch_s']['min']:>7.3f}"
              f"{r.get('first_call_s') or r.get('first_epoch_s') or math.nan:>7.2f}"
              f"{r['peak_rss_gb']:>8.2f}"
              f"{'-' if ratio is None else format(ratio, '.2f'):>7}")  # fmt: skip
    print(f"goals: {json.dumps(record['goals'])}\nwrote {record['out']}")


def main(argv: Sequence[str] | None = None) -> int:
    """Simulate, run every contender, write JSON + PNG, print a table."""
    args = parse_args(argv)
    if args.worker:
        return run_worker(args)
    import anndata

    from scribe.datasets import simulate_atlas
    from scribe.io import atomic_write

    run = run_record(VERSIONED)
    record: dict[str, Any] = {"benchmark": "scribe atlas", "quick": args.quick}
    results: dict[str, Any] = {}
    n_cells, n_genes = args.n_cells, args.n_genes
    with tempfile.TemporaryDirectory(prefix="scribe-atlas-") as tmp:
        with Clock() as sim:
            x = simulate_atlas(n_cells, n_genes, args.density, seed=args.seed)
        h5ad = Path(tmp) / "atlas.h5ad"
        atomic_write(h5ad, anndata.AnnData(X=x).write_h5ad)
        record["sizes"] = {
            "n_cells": n_cells,
            "n_genes": n_genes,
            "density_target": args.density,
            "density_simulated": x.nnz / (n_cells * n_genes),
            "nnz": int(x.nnz),
            "csr_gb": (x.data.nbytes + x.indices.nbytes + x.indptr.nbytes) / 1e9,
            "h5ad_gb": h5ad.stat().st_size / 1e9,
            "simulate_s": sim.seconds,
            "batch_size": args.batch_size,
            "epochs": args.epochs,
        }
        del x
        common = ["--h5ad", str(h5ad), "--epochs", str(args.epochs)]
        common += ["--batch-size", str(args.batch_size), "--seed", str(args.seed)]
        for name, command in contenders(args.scvi_python).items():
            if command is None:
                results[name] = {"error": "scvi-tools not available"}
                continue
            print(f"running {LABELS[name]} ({command[0]}) ...", flush=True)
            results[name] = run_process([*command, *common])
    scvi_versions = results["scvi"].get("versions", {})
    run["versions"] |= {
        k: scvi_versions.get(k) for k in ("scvi-tools", "torch", "lightning")
    }
    record["results"] = results
    record["ratios_vs_scvi"], record["goals"] = compare(results)
    out = args.out_dir / f"{RESULTS_STEM}.json"
    record["out"] = str(out)
    write_results(out, run, record)
    if any("epoch_s" in r for r in results.values()):
        plot(record, out.with_suffix(".png"))
    print_table(record)
    errors = {r.get("error") for r in results.values()}
    return int(bool(errors - {None, "scvi-tools not available"}))


if __name__ == "__main__":
    raise SystemExit(main())
