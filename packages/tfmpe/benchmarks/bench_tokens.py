"""Cost of building, decoding and slicing ``Tokens`` as the token count grows.

The package README ("Benchmarks", "Tokens") describes what is measured, how it
is timed and the goals. Writes a table on stdout and ``tokens.json`` and
``tokens.png`` into ``--out-dir`` (default: ``results/`` next to this script)
unless ``--no-save``; ``--quick`` runs it at toy sizes with few repeats.

Usage::

    python packages/tfmpe/benchmarks/bench_tokens.py
    python packages/tfmpe/benchmarks/bench_tokens.py --quick --out-dir /tmp/tokens
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import tokens_lib as lib
import tokens_report as report
from harness import run_record, write_results
from peers import ravel_pytree

GROUPS = (5, 67, 467)
SAMPLES = 1000
REPEATS = 7
MIN_REPEAT_S = 0.05
# --quick: N in {13, 31}, 50 samples, 2 repeats of at least one call each
QUICK = {"groups": [2, 5], "samples": 50, "repeats": 2, "min_repeat_s": 0.0}
SEED = 0
RESULTS_STEM = "tokens"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"toy sizes and few repeats ({QUICK}); explicit options still win",
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed repeats per operation"
    )
    parser.add_argument(
        "--min-repeat-s",
        type=float,
        default=None,
        help="shortest duration of one repeat (sets the calls per repeat)",
    )
    parser.add_argument("--samples", type=int, default=None)
    parser.add_argument(
        "--groups",
        type=int,
        nargs="+",
        default=None,
        help="values of n (N = 6 n + 1 tokens)",
    )
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "--no-save", action="store_true", help="print the table, write nothing"
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=Path(__file__).resolve().parent / "results",
        help="folder for the JSON and PNG",
    )
    args = parser.parse_args(argv)
    defaults = (
        QUICK
        if args.quick
        else {
            "groups": list(GROUPS),
            "samples": SAMPLES,
            "repeats": REPEATS,
            "min_repeat_s": MIN_REPEAT_S,
        }
    )
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if (
        args.repeats < 1
        or args.samples < 1
        or min(args.groups) < 1
        or args.min_repeat_s < 0
    ):
        parser.error("need positive --repeats, --samples, --groups")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the table, write JSON and PNG."""
    args = parse_args(argv)
    run = run_record()
    machine = run.machine
    print(
        f"jax {run.versions['jax']} on {machine['backend']} "
        f"{machine['cpu_count']} CPUs, load {machine['load_average_1_5_15']}; "
        f"{args.samples} samples, {args.repeats} repeats",
        flush=True,
    )
    start = time.perf_counter()
    records = []
    for n in args.groups:
        record = lib.benchmark_n(n, args)
        records.append(record)
        print(
            f"N={record['n_tokens']}: decode ours/peer "
            f"{record['decode_ratio_ours_over_peer']:.2f}x, "
            f"traces {record['traces']} ({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
    elapsed = time.perf_counter() - start
    print()
    print(report.format_table(records))
    print(f"\nREADME table:\n{report.readme_table(records)}")
    goals = {
        name: all(r["goals"][name] for r in records) for name in records[0]["goals"]
    }
    print(
        "\ngoals: "
        + ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in goals.items())
    )
    print(f"total {elapsed:.1f} s")
    if args.no_save:
        return 0

    settings = {
        "quick": args.quick,
        "samples": args.samples,
        "groups": args.groups,
        "obs_per_group": lib.OBS_PER_GROUP,
        "seed": args.seed,
        "repeats": args.repeats,
        "min_repeat_s": args.min_repeat_s,
        "independence": lib.INDEPENDENCE,
        "selected_keys": lib.SELECTED,
        "trace_instances": lib.TRACE_INSTANCES,
        "time": "median over repeats of seconds per call (blocked)",
        "peer": ravel_pytree.DESCRIPTION,
    }
    results = {
        "goals": {
            "decode_ratio_ours_over_peer_max": lib.DECODE_RATIO_GOAL,
            "mask_bytes_max": "N^2",
            "traces": lib.TRACE_GOAL,
            "met": goals,
        },
        "total_s": elapsed,
        "per_n": records,
    }
    json_path = write_results(args.out_dir, RESULTS_STEM, settings, results, run)
    title = (
        f"tfmpe Tokens, hierarchical Gaussian, {args.samples:,} samples; "
        f"jax {run.versions['jax']} {machine['backend']}, "
        f"{machine['cpu_count']} CPUs"
    )
    report.plot(records, title, args.out_dir / f"{RESULTS_STEM}.png")
    print(f"wrote {json_path} and {RESULTS_STEM}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
