"""Cost of building, decoding and slicing ``Tokens`` as the token count grows.

What is measured
----------------
A hierarchical Gaussian pytree of ``S = 1,000`` samples (``--samples``)

    mu ~ N(0, 1),  theta_i ~ N(mu, 1),  obs_ij ~ N(theta_i, 0.5^2),

with leaves ``{mu: (S, 1, 1), theta: (S, n, 1), obs: (S, n, 5, 1)}`` (one feature
per token), so ``N = 1 + n + 5 n`` tokens; ``n`` in {5, 67, 467} gives ``N`` in
{31, 403, 2803}. The independence specification is the hierarchical one::

    {"local": ["obs", "theta"],
     "cross": [("mu", "obs"), ("obs", "mu")],
     "cross_local": [("theta", "obs", (0, 0))]}

For every ``N``:

* ``from_pytree``: eager ``Tokens.from_pytree(data, independence)`` with the
  mask cache warm (the usual case: same layout, new data) and cold (the mask
  cache ``tfmpe.preprocessing.masks.cached_mask`` cleared before each call);
* ``mask build``: ``tokens.self_attention_mask`` with the cache cleared before
  each call, so every call really builds the ``bool[N, N]`` mask (and copies it
  to the device);
* ``decode``: ``jax.jit(lambda t: t.decode())(tokens)`` against the peer,
  ``jax.flatten_util.ravel_pytree``: its ``unravel`` function works on one
  sample, so the peer is ``jax.jit(jax.vmap(unravel))`` applied to the
  ``(S, N)`` array of the raveled samples (the same leaves). Both produce the
  same dict of ``(S, *event, *batch)`` arrays (checked bit for bit). Goal:
  ``ours / peer <= 1.5`` (median times);
* ``with_values``: ``jax.jit(lambda t, v: t.with_values(theta=v))``;
* ``select``: ``tokens.select_tokens(["theta", "obs"]).data``, jitted and eager
  (checked against ``data[:, 1:]``);
* ``mask bytes``: ``tokens.self_attention_mask.nbytes``. Goal: ``<= N^2``;
* ``traces``: how often a jitted function of ``Tokens`` (using the data, a
  decoded leaf and the self-attention mask) is traced when called on three
  fresh but equal ``Tokens`` (each from its own copy of the data and its own
  independence dict), counted by a Python side effect in the traced function.
  Goal: 1. The seconds of its first call (trace + compile + run) are kept as
  ``traced_fn_first_call_s``: inside ``jit`` the mask is an ``N^2``-byte
  constant of the compiled program.

Timing: the first call of every jitted function (trace, compile and run, while
checking its result) is timed on its own (``first_call_s``). Then every function
is called twice untimed, the number of calls per repeat is chosen so that one
repeat lasts at least ``--min-repeat-s``, each call blocks until its result is
ready, and the reported time per call is the median over ``--repeats`` repeats
(the JSON also keeps every repeat). The two decode implementations are timed in
alternating repeats so that load from other processes hits both alike.

Outputs
-------
A table on stdout, ``tokens.json`` (every number, the goals, machine
information) and ``tokens.png`` (times against ``N``, ours against
``ravel_pytree`` decode), both written atomically into ``--out-dir`` (default:
``results/`` next to this script) unless ``--no-save``.

Usage::

    python packages/tfmpe/benchmarks/bench_tokens.py
    python packages/tfmpe/benchmarks/bench_tokens.py --repeats 3 --no-save
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import tokens_lib as lib
from harness import machine_info, write_json
from peers import ravel_pytree

GROUPS = (5, 67, 467)
SAMPLES = 1000
SEED = 0
RESULTS_STEM = "tokens"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--repeats", type=int, default=7, help="timed repeats per operation"
    )
    parser.add_argument(
        "--min-repeat-s",
        type=float,
        default=0.05,
        help="shortest duration of one repeat (sets the calls per repeat)",
    )
    parser.add_argument("--samples", type=int, default=SAMPLES)
    parser.add_argument(
        "--groups",
        type=int,
        nargs="+",
        default=list(GROUPS),
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
    machine = machine_info()
    print(
        f"jax {machine['jax']} on {machine['backend']} "
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
    print(lib.format_table(records))
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

    payload = {
        "benchmark": "tfmpe Tokens: build, mask, decode, with_values, select",
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "config": {
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
        },
        "goals": {
            "decode_ratio_ours_over_peer_max": lib.DECODE_RATIO_GOAL,
            "mask_bytes_max": "N^2",
            "traces": lib.TRACE_GOAL,
            "met": goals,
        },
        "total_s": elapsed,
        "results": records,
    }
    json_path = write_json(args.out_dir / f"{RESULTS_STEM}.json", payload, indent=2)
    title = (
        f"tfmpe Tokens, hierarchical Gaussian, {args.samples:,} samples; "
        f"jax {machine['jax']} {machine['backend']}, {machine['cpu_count']} CPUs"
    )
    lib.plot(records, title, args.out_dir / f"{RESULTS_STEM}.png")
    print(f"wrote {json_path} and {RESULTS_STEM}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
