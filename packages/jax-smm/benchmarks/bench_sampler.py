"""Throughput of Gibbs samplers on a periodic-grid Potts model.

Variable updates per second of jax_smm's chromatic Gibbs kernel (with and
without factor-cell counts), a vectorized NumPy checkerboard floor and thrml,
all sampling one and the same 64 x 64 torus Potts model with ``K`` states, in
the same run; compilation is reported apart. Before any number is kept, the
samplers are checked to sample the same model (log-potentials agree,
single-site marginals agree within sampling noise, the counting run ends in
the states of the plain one). The package README ("Sampler throughput")
describes the model, the peers and the method.

Writes ``sampler_throughput.json`` and ``sampler_throughput.png`` into
``--out-dir``; a full run (not ``--quick``, not ``--no-readme``) then rewrites
the ``bench:sampler`` block of the README from that JSON.

Usage::

    python packages/jax-smm/benchmarks/bench_sampler.py            # full run
    python packages/jax-smm/benchmarks/bench_sampler.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

# The script's own folder is on sys.path when it runs.
import readme_blocks
from harness import run_record, start_run, time_calls, write_json
from peers import IMPLEMENTATIONS, make_sampler
from peers.base import Sampler
from potts_grid import PARAM_STD, check_parameterization, compare_marginals, make_potts
from sampler_report import format_table, plot_throughput, ratios

SIDE = 64
SEED = 1234
RESULTS_STEM = "sampler_throughput"


# ---------------------------------------------------------------- measuring


def benchmark_k(
    k: int, args: argparse.Namespace, implementations: Sequence[str]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run every implementation on the K-state model; records and checks."""
    model = make_potts(args.side, k, args.seed)
    init = np.random.default_rng((args.seed, k, 2)).integers(
        0, k, size=(args.chains, model.num_sites)
    )
    n_calls = args.repeats + 1
    updates = model.num_sites * args.chains * args.sweeps
    records: list[dict[str, Any]] = []
    finals: dict[str, np.ndarray] = {}
    checks: dict[str, Any] = {}
    for name in implementations:
        print(f"K={k} {name}: setting up ...", flush=True)
        sampler: Sampler = make_sampler(
            name, model, init, args.sweeps, n_calls, args.seed
        )
        if name in ("ours", "ours_counts"):
            checks["ours_num_colors"] = sampler.num_colors
        if name in ("ours", "thrml"):
            errors = check_parameterization(
                model,
                sampler if name == "ours" else None,
                sampler if name == "thrml" else None,
                args.seed,
            )
            checks[f"{name}_log_potential_max_abs_error"] = errors[name]
        times = time_calls(sampler, args.repeats)
        median = statistics.median(times)
        finals[name] = sampler.states()
        record = {
            "implementation": name,
            "k": k,
            "rate_m_updates_per_s": updates / median / 1e6,
            "median_s": median,
            "times_s": times,
            "compile_s": sampler.compile_s,
            "setup_s": sampler.setup_s,
            "updates_per_call": updates,
        }
        records.append(record)
        compile_text = "-" if sampler.compile_s is None else f"{sampler.compile_s:.2f}"
        print(
            f"K={k} {name}: {record['rate_m_updates_per_s']:.1f} M updates/s "
            f"(median {median:.3f} s of {len(times)}, compile {compile_text} s)",
            flush=True,
        )
        del sampler
    for peer in ("numpy", "thrml"):
        if "ours" in finals and peer in finals:
            result = compare_marginals(finals["ours"], finals[peer], k)
            checks[f"marginals_ours_vs_{peer}"] = result
            print(
                f"K={k} check ours vs {peer}: rms {result['rms']:.4f} "
                f"(noise {result['expected_rms']:.4f}), "
                f"r {result['correlation']:.3f} -> {'ok' if result['ok'] else 'FAIL'}"
            )
    if "ours" in finals and "ours_counts" in finals:
        # Same seed, same draws: counting must not change the states.
        same = bool(np.array_equal(finals["ours"], finals["ours_counts"]))
        checks["ours_counts_states_equal_ours"] = {"ok": same}
        print(f"K={k} check ours_counts ends in the states of ours -> {same}")
    return records, checks


# -------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n", 1)[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 20 sweeps, 1 repeat"
    )
    parser.add_argument("--ks", type=int, nargs="+", default=[2, 8])
    parser.add_argument("--chains", type=int, default=256)
    parser.add_argument(
        "--sweeps", type=int, default=None, help="sweeps per call (200; 20 if quick)"
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed calls (3; 1 if quick)"
    )
    parser.add_argument("--skip-thrml", action="store_true")
    parser.add_argument(
        "--skip-counts",
        action="store_true",
        help="leave out ours_counts (the kernel counting factor cells every sweep)",
    )
    parser.add_argument(
        "--no-readme",
        action="store_true",
        help="do not rewrite the README block (quick runs never do)",
    )
    parser.add_argument("--device-label", default=None, help="stored in the JSON")
    parser.add_argument("--side", type=int, default=SIDE, help="grid side (even)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=Path(__file__).resolve().parent / "results",
        help="folder for the JSON and PNG",
    )
    args = parser.parse_args(argv)
    if args.sweeps is None:
        args.sweeps = 20 if args.quick else 200
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if min(args.ks) < 2 or args.chains < 1 or args.sweeps < 1 or args.repeats < 1:
        parser.error("need K >= 2 and positive --chains, --sweeps, --repeats")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the table, write JSON and PNG."""
    args = parse_args(argv)
    skipped = {"thrml"} if args.skip_thrml else set()
    if args.skip_counts:
        skipped.add("ours_counts")
    implementations = [name for name in IMPLEMENTATIONS if name not in skipped]
    started = start_run()  # git state now, close to when jax_smm was imported
    machine = started.machine
    print(
        f"jax {started.versions['jax']} on {machine['backend']} "
        f"({machine['device_kind']}), {machine['cpu_count']} CPUs; "
        f"grid {args.side}x{args.side}, "
        f"{args.chains} chains, {args.sweeps} sweeps x {args.repeats} repeats",
        flush=True,
    )
    records: list[dict[str, Any]] = []
    checks: dict[str, Any] = {}
    for k in args.ks:
        k_records, k_checks = benchmark_k(k, args, implementations)
        records += k_records
        checks[str(k)] = k_checks
    print()
    print(format_table(records))
    failed = [
        f"K={k} {name}"
        for k, k_checks in checks.items()
        for name, value in k_checks.items()
        if isinstance(value, dict) and not value["ok"]
    ]
    if failed:
        print(f"sanity check failed ({', '.join(failed)}); not writing results")
        return 1

    args.out_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        "run": run_record(started),
        "benchmark": "gibbs sampler throughput, periodic-grid Potts model",
        "device_label": args.device_label,
        "config": {
            "side": args.side,
            "num_sites": args.side * args.side,
            "num_edges": 2 * args.side * args.side,
            "param_std": PARAM_STD,
            "seed": args.seed,
            "ks": args.ks,
            "chains": args.chains,
            "sweeps_per_call": args.sweeps,
            "repeats": args.repeats,
            "quick": args.quick,
            "implementations": implementations,
            "rate": "sites * chains * sweeps / median seconds of one call",
        },
        "results": records,
        "ratios": ratios(records),
        "checks": checks,
    }
    json_path = args.out_dir / f"{RESULTS_STEM}.json"
    write_json(json_path, payload)
    label = f" [{args.device_label}]" if args.device_label else ""
    title = (
        f"Gibbs throughput, {args.side}x{args.side} torus Potts, {args.chains} "
        f"chains, {args.sweeps} sweeps\n{machine['backend']}: "
        f"{machine['device_kind']}, {machine['cpu_count']} CPUs{label}"
    )
    plot_throughput(records, title, args.out_dir / f"{RESULTS_STEM}.png")
    print(f"\nwrote {json_path} and {RESULTS_STEM}.png")
    if not (args.quick or args.no_readme):
        readme_blocks.refresh("sampler", payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
