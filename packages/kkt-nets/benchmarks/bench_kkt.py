"""kkt-nets against HiGHS: raw predictions, certificates and refined solutions.

The method (families, the 1,000-LP batch, the loss and JEPA ablations, the
spec's MLP) is described in the package README, "Benchmarks". Writes
``results/kkt.json`` and ``results/kkt.png`` (``--out-dir``; schema in
``harness.py``) and prints the README tables. ``--quick`` runs everything at
toy sizes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import torch
from harness import log, write_results
from kkt_lib import goals, make_dataset, plot, run
from kkt_report import readme_blocks

from kkt_nets.evaluate import evaluate

# family -> (training sizes, {description: sizes 2-4x larger}), kkt-generate flags
FAMILIES = {
    "set_cover": (
        {"rows": "50", "cols": "50"},
        {
            "2-4x rows and columns, same density": {
                "rows": "100:200",
                "cols": "100:200",
            },
            "2-4x rows (Gasse et al.)": {"rows": "100:200", "cols": "50"},
        },
    ),
    "combinatorial_auction": (
        {"items": "20:60", "bids": "40:120"},
        {"2-4x items and bids": {"items": "80:160", "bids": "160:320"}},
    ),
    "facility_location": (
        {"customers": "10", "facilities": "5"},
        {
            "2-4x customers, 1-2x facilities": {
                "customers": "20:40",
                "facilities": "5:10",
            }
        },
    ),
    "independent_set": ({"nodes": "20:60"}, {"2-4x nodes": {"nodes": "100:200"}}),
}
QUICK = {
    "set_cover": (
        {"rows": "8", "cols": "10"},
        {"larger": {"rows": "16:24", "cols": "20:30"}},
    ),
    "independent_set": ({"nodes": "10:14"}, {"larger": {"nodes": "24:40"}}),
}
STRICT_TOL = 1e-5
LOSSES = {
    "spec: bounds as rows, KKT loss": ["--bounds-as-rows"],
    "bounds in the output layer, KKT loss": ["--loss", "kkt"],
    "certificate loss, penalty 1": ["--penalty", "1"],
    "certificate loss, penalty 10": ["--penalty", "10"],
    "certificate loss, adaptive penalty from 1": [
        "--penalty", "1", "--penalty-schedule", "adaptive"
    ],
    "certificate loss + supervised": ["--supervised-weight", "1"],
}  # fmt: skip
JEPA = {"JEPA ema": ["--use-jepa", "--jepa-mode", "ema"],
        "JEPA simsiam": ["--use-jepa", "--jepa-mode", "simsiam"]}  # fmt: skip


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="toy sizes, smoke run")
    parser.add_argument("--epochs", type=int, default=None, help="default 30 (quick 2)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--check-every", type=int, default=16, help="PDHG checks")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out-dir", type=Path, default=Path(__file__).resolve().parent / "results"
    )
    parser.add_argument("--work-dir", type=Path, default=None, help="default: temp")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    torch.set_num_threads(args.threads)
    epochs = args.epochs or (2 if args.quick else 30)
    families = QUICK if args.quick else FAMILIES
    counts = (24, 8, 8) if args.quick else (1000, 100, 100)
    big_batch = 40 if args.quick else 1000
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="kkt-bench-"))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    common = ["--epochs", str(epochs), "--seed", str(args.seed),
              "--num-threads", str(args.threads), "--devices", args.device]  # fmt: skip
    if args.quick:
        common += ["--embedding-size", "16", "--gnn-layers", "2", "--hidden", "32"]
    data: dict = {}
    ood: dict = {}
    for family, (sizes, larger) in families.items():
        log(f"datasets: {family}")
        data[family] = make_dataset(work / family, family, sizes, counts, args.seed)
        ood[family] = {
            name: make_dataset(
                work / f"{family}_ood{k}", family, params, (0, 0, counts[2]),
                args.seed + 1 + k,
            )
            for k, (name, params) in enumerate(larger.items())
        }  # fmt: skip

    def go(label: str, family: str, flags: list[str], **extra) -> dict:
        return run(label, data[family], common + flags, work, args.check_every, **extra)

    results: dict = {"families": [], "losses": [], "jepa": []}
    for family in families:
        results["families"].append(
            go(family, family, [], ood=ood[family], strict_tol=STRICT_TOL)
        )
    # the default set-cover run is the reference row of both ablations
    default = {
        k: v
        for k, v in results["families"][0].items()
        if k not in ("ood", "test_strict")
    }
    log("1,000 LPs in one batch")
    many = make_dataset(
        work / "independent_set_many", "independent_set",
        families["independent_set"][0], (0, 0, big_batch), args.seed + 2,
    )  # fmt: skip
    checkpoint = work / "runs" / "independent_set" / "best.pt"
    results["batch"] = evaluate(
        checkpoint, many, check_every=args.check_every
    ).to_dict()
    results["losses"] = [{**default, "label": "certificate loss, penalty 3 (default)"}]
    results["losses"] += [go(k, "set_cover", flags) for k, flags in LOSSES.items()]
    results["jepa"] = [{**default, "label": "JEPA off (default)"}]
    results["jepa"] += [go(k, "set_cover", flags) for k, flags in JEPA.items()]
    results["mlp"] = go("set cover, the spec's MLP", "set_cover", ["--model", "mlp"])
    results["goals"] = goals(results["families"])
    settings = {
        "epochs": epochs,
        "strict_tol": STRICT_TOL,
        "quick": args.quick,
        "counts": counts,
        "families": families,
        "check_every": args.check_every,
        "seed": args.seed,
    }
    path = write_results(args.out_dir, "kkt", settings, results, plot)
    print("\n\n".join(readme_blocks(results)))
    print(json.dumps(results["goals"], indent=1))
    log(f"wrote {path}")
    if args.work_dir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
