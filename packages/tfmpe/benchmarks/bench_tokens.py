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
import copy
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from tfmpe.io import write_atomically
from tfmpe.preprocessing import Tokens, masks

GROUPS = (5, 67, 467)
OBS_PER_GROUP = 5
SAMPLES = 1000
SEED = 0
OBS_SCALE = 0.5
INDEPENDENCE: dict[str, list[Any]] = {
    "local": ["obs", "theta"],
    "cross": [("mu", "obs"), ("obs", "mu")],
    "cross_local": [("theta", "obs", (0, 0))],
}
SELECTED = ["theta", "obs"]
DECODE_RATIO_GOAL = 1.5
TRACE_GOAL = 1
TRACE_INSTANCES = 3
RESULTS_STEM = "tokens"
# Operations timed per N, in table order: (record key, table label).
OPERATIONS = (
    ("from_pytree", "from_pytree"),
    ("from_pytree_cold", "from_pytree, cold cache"),
    ("mask_build", "mask build"),
    ("decode_ours", "decode (jit)"),
    ("decode_peer", "ravel_pytree unravel (jit, vmap)"),
    ("with_values_jit", "with_values theta (jit)"),
    ("select_jit", "select theta,obs .data (jit)"),
    ("select_eager", "select theta,obs .data (eager)"),
)


# ------------------------------------------------------------------ utilities


def make_data(n: int, samples: int, seed: int) -> dict[str, jax.Array]:
    """Draw the hierarchical Gaussian pytree with ``n`` groups.

    Parameters
    ----------
    n : int
        Number of groups (``theta`` entries); ``obs`` has ``5 n`` entries.
    samples : int
        Leading sample size ``S``.
    seed : int
        NumPy seed (combined with ``n``).

    Returns
    -------
    dict of str to Array
        ``{"mu": (S, 1, 1), "theta": (S, n, 1), "obs": (S, n, 5, 1)}``, float32.
    """
    rng = np.random.default_rng((seed, n))
    mu = rng.normal(size=(samples, 1, 1))
    theta = mu + rng.normal(size=(samples, n, 1))
    obs = theta[:, :, None, :] + OBS_SCALE * rng.normal(
        size=(samples, n, OBS_PER_GROUP, 1)
    )
    return {
        key: jnp.asarray(value, jnp.float32)
        for key, value in (("mu", mu), ("theta", theta), ("obs", obs))
    }


def time_calls(
    functions: Mapping[str, Callable[[], Any]], repeats: int, min_repeat_s: float
) -> dict[str, dict[str, Any]]:
    """Median seconds per call of each function, repeats interleaved.

    Parameters
    ----------
    functions : mapping of str to callable
        Argument-free calls; each result is blocked on.
    repeats : int
        Timed repeats per function.
    min_repeat_s : float
        Shortest duration of one repeat; sets the calls per repeat.

    Returns
    -------
    dict
        Per name: ``median_s``, ``min_s``, ``times_s`` (seconds per call, one per
        repeat), ``calls_per_repeat`` and ``warmup_s`` (the untimed first call).
    """
    calls: dict[str, int] = {}
    out: dict[str, dict[str, Any]] = {}
    for name, fn in functions.items():
        start = time.perf_counter()
        jax.block_until_ready(fn())
        first = time.perf_counter() - start
        start = time.perf_counter()
        jax.block_until_ready(fn())
        once = max(time.perf_counter() - start, 1e-7)
        calls[name] = max(1, math.ceil(min_repeat_s / once))
        out[name] = {"warmup_s": first, "times_s": []}
    for _ in range(repeats):
        for name, fn in functions.items():
            k = calls[name]
            start = time.perf_counter()
            for _ in range(k):
                jax.block_until_ready(fn())
            out[name]["times_s"].append((time.perf_counter() - start) / k)
    for name, record in out.items():
        record["median_s"] = statistics.median(record["times_s"])
        record["min_s"] = min(record["times_s"])
        record["calls_per_repeat"] = calls[name]
    return out


def count_traces(data: Mapping[str, jax.Array], instances: int) -> tuple[int, float]:
    """Traces of one jitted function called on ``instances`` equal ``Tokens``.

    Every instance is built by ``Tokens.from_pytree`` from its own copy of the
    data and its own deep copy of the independence dict.

    Parameters
    ----------
    data : mapping of str to Array
        The pytree to copy.
    instances : int
        Number of fresh ``Tokens`` to call the function on.

    Returns
    -------
    traces : int
        How often the Python function body ran (1 means one trace in all).
    first_call_s : float
        Seconds of the first call (trace, compile and run).
    """
    traces = 0

    def body(tokens: Tokens) -> jax.Array:
        nonlocal traces
        traces += 1
        # The mask is used as attention would use it (a select), not reduced:
        # an integer reduction of the N^2 mask constant is constant-folded by
        # XLA, which takes ~10 s to compile at N = 2803 (see the report).
        first = tokens.data[0, :, 0]
        masked = jnp.where(tokens.self_attention_mask, first[None, :], 0.0)
        theta = tokens.decode()["theta"]
        return jnp.sum(masked) + jnp.sum(theta)

    fn = jax.jit(body)
    first_call_s = math.nan
    for i in range(instances):
        fresh = {key: jnp.array(np.asarray(value)) for key, value in data.items()}
        tokens = Tokens.from_pytree(fresh, copy.deepcopy(INDEPENDENCE))
        start = time.perf_counter()
        jax.block_until_ready(fn(tokens))
        if i == 0:
            first_call_s = time.perf_counter() - start
    return traces, first_call_s


def first_call(fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    """Result and seconds of one blocked call (the first: trace + compile)."""
    start = time.perf_counter()
    result = jax.block_until_ready(fn(*args))
    return result, time.perf_counter() - start


def check_equal(name: str, got: Any, expected: Any) -> None:
    """Raise ``AssertionError`` unless two pytrees of arrays are bit-identical."""
    same = jax.tree.structure(got) == jax.tree.structure(expected) and all(
        np.array_equal(np.asarray(a), np.asarray(b))
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected), strict=True)
    )
    if not same:
        raise AssertionError(f"{name}: result differs from the reference")


# ------------------------------------------------------------------ benchmark


def benchmark_n(n: int, args: argparse.Namespace) -> dict[str, Any]:
    """Measure every operation for ``n`` groups (``N = 6 n + 1`` tokens).

    Parameters
    ----------
    n : int
        Number of groups.
    args : argparse.Namespace
        Parsed options (``samples``, ``seed``, ``repeats``, ``min_repeat_s``).

    Returns
    -------
    dict
        The record of this ``N``: timings, ratio, mask bytes, traces, goals.
    """
    data = make_data(n, args.samples, args.seed)
    tokens = Tokens.from_pytree(data, INDEPENDENCE)
    jax.block_until_ready(tokens)
    n_tokens = tokens.n_tokens
    timing: dict[str, Callable[[], Any]] = {}

    # Construction, with the mask cache warm and cold.
    timing["from_pytree"] = lambda: Tokens.from_pytree(data, INDEPENDENCE)

    def from_pytree_cold() -> Tokens:
        masks.cached_mask.cache_clear()
        return Tokens.from_pytree(data, INDEPENDENCE)

    def mask_build() -> jax.Array:
        masks.cached_mask.cache_clear()
        return tokens.self_attention_mask

    timing["from_pytree_cold"] = from_pytree_cold
    timing["mask_build"] = mask_build

    # Decode against ravel_pytree's unravel, vmapped over the samples.
    decode = jax.jit(lambda t: t.decode())
    _, unravel = ravel_pytree({key: value[0] for key, value in data.items()})
    flat_samples = jax.vmap(lambda d: ravel_pytree(d)[0])(data)
    peer = jax.jit(jax.vmap(unravel))
    compile_s: dict[str, float] = {}
    got, compile_s["decode_ours"] = first_call(decode, tokens)
    check_equal("decode", got, data)
    got, compile_s["decode_peer"] = first_call(peer, flat_samples)
    check_equal("ravel_pytree unravel", got, data)

    # with_values and select_tokens.
    new_theta = data["theta"] + 1.0
    with_values = jax.jit(lambda t, v: t.with_values(theta=v))
    got, compile_s["with_values_jit"] = first_call(with_values, tokens, new_theta)
    check_equal("with_values", got.decode()["theta"], new_theta)
    select_jit = jax.jit(lambda t: t.select_tokens(SELECTED).data)
    got, compile_s["select_jit"] = first_call(select_jit, tokens)
    check_equal("select (jit)", got, tokens.data[:, 1:])
    check_equal(
        "select (eager)", tokens.select_tokens(SELECTED).data, tokens.data[:, 1:]
    )

    times = time_calls(timing, args.repeats, args.min_repeat_s)
    times |= time_calls(
        {
            "decode_ours": lambda: decode(tokens),
            "decode_peer": lambda: peer(flat_samples),
        },
        args.repeats,
        args.min_repeat_s,
    )
    times |= time_calls(
        {
            "with_values_jit": lambda: with_values(tokens, new_theta),
            "select_jit": lambda: select_jit(tokens),
            "select_eager": lambda: tokens.select_tokens(SELECTED).data,
        },
        args.repeats,
        args.min_repeat_s,
    )
    for key, seconds in compile_s.items():
        times[key]["first_call_s"] = seconds
    masks.cached_mask.cache_clear()
    mask = tokens.self_attention_mask
    traces, traced_first_call_s = count_traces(data, TRACE_INSTANCES)
    ratio = times["decode_ours"]["median_s"] / times["decode_peer"]["median_s"]
    return {
        "n_groups": n,
        "n_tokens": n_tokens,
        "samples": args.samples,
        "data_bytes": int(tokens.data.nbytes),
        "times": times,
        "decode_ratio_ours_over_peer": ratio,
        "decode_ratio_min_times": times["decode_ours"]["min_s"]
        / times["decode_peer"]["min_s"],
        "mask_bytes": int(mask.nbytes),
        "mask_dtype": str(mask.dtype),
        "mask_allowed_fraction": float(np.mean(np.asarray(mask))),
        "traces": traces,
        "traced_fn_first_call_s": traced_first_call_s,
        "goals": {
            "decode_ratio_le_1.5": bool(ratio <= DECODE_RATIO_GOAL),
            "mask_bytes_le_n2": bool(mask.nbytes <= n_tokens**2),
            "traces_eq_1": bool(traces == TRACE_GOAL),
        },
    }


# ------------------------------------------------------------------ output


def machine_info() -> dict[str, Any]:
    """JAX version and backend, CPUs, load and platform of this machine."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "cpu_count": os.cpu_count(),
        "load_average_1_5_15": None if load is None else list(load),
        "platform": platform.platform(),
    }


def format_time(seconds: float) -> str:
    """Seconds as a short string in µs or ms."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    return f"{seconds * 1e3:.2f} ms"


def format_table(records: Sequence[dict[str, Any]]) -> str:
    """Plain-text table: one row per operation or metric, one column per N."""
    label_width = 36
    columns = [f"N = {r['n_tokens']}" for r in records]
    header = f"{'median per call':<{label_width}}" + "".join(
        f"{c:>14}" for c in columns
    )
    lines = [header, "-" * len(header)]
    for key, label in OPERATIONS:
        cells = [format_time(r["times"][key]["median_s"]) for r in records]
        lines.append(f"{label:<{label_width}}" + "".join(f"{c:>14}" for c in cells))
    rows: list[tuple[str, list[str]]] = [
        (
            f"decode ours/peer (goal <= {DECODE_RATIO_GOAL})",
            [f"{r['decode_ratio_ours_over_peer']:.2f}x" for r in records],
        ),
        (
            "decode first call, ours / peer",
            [
                f"{r['times']['decode_ours']['first_call_s'] * 1e3:.0f}/"
                f"{r['times']['decode_peer']['first_call_s'] * 1e3:.0f} ms"
                for r in records
            ],
        ),
        ("mask bytes", [f"{r['mask_bytes']:,}" for r in records]),
        ("N^2 (goal: mask bytes <= N^2)", [f"{r['n_tokens'] ** 2:,}" for r in records]),
        (
            f"traces over {TRACE_INSTANCES} equal Tokens (goal 1)",
            [str(r["traces"]) for r in records],
        ),
    ]
    lines.append("-" * len(header))
    for label, cells in rows:
        lines.append(f"{label:<{label_width}}" + "".join(f"{c:>14}" for c in cells))
    return "\n".join(lines)


def plot(records: Sequence[dict[str, Any]], title: str, path: Path) -> None:
    """Times against ``N``: decode ours vs peer (left), the other operations."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = [r["n_tokens"] for r in records]
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(11.0, 4.5), layout="constrained", sharey=True
    )
    for key, label, marker in (
        ("decode_ours", "Tokens.decode (jit)", "o"),
        ("decode_peer", "ravel_pytree unravel (jit, vmap)", "s"),
    ):
        values = [r["times"][key]["median_s"] * 1e3 for r in records]
        left.plot(ns, values, marker=marker, label=label)
    for r in records:
        left.annotate(
            f"{r['decode_ratio_ours_over_peer']:.2f}x",
            (r["n_tokens"], r["times"]["decode_ours"]["median_s"] * 1e3),
            textcoords="offset points",
            xytext=(4, 6),
            fontsize=8,
        )
    left.set_title("decode: ours vs ravel_pytree (ratio ours/peer)", fontsize=10)
    for key, label in OPERATIONS:
        if key.startswith("decode"):
            continue
        values = [r["times"][key]["median_s"] * 1e3 for r in records]
        right.plot(ns, values, marker="o", label=label)
    right.set_title("other Tokens operations", fontsize=10)
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(ns, [str(n) for n in ns])
        ax.minorticks_off()
        ax.set_xlabel(f"tokens N ({records[0]['samples']:,} samples)")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8)
    left.set_ylabel("median ms per call")
    fig.suptitle(title, fontsize=10)
    write_atomically(path, lambda tmp: fig.savefig(tmp, dpi=120))
    plt.close(fig)


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
        record = benchmark_n(n, args)
        records.append(record)
        print(
            f"N={record['n_tokens']}: decode ours/peer "
            f"{record['decode_ratio_ours_over_peer']:.2f}x, "
            f"traces {record['traces']} ({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
    elapsed = time.perf_counter() - start
    print()
    print(format_table(records))
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
            "obs_per_group": OBS_PER_GROUP,
            "seed": args.seed,
            "repeats": args.repeats,
            "min_repeat_s": args.min_repeat_s,
            "independence": INDEPENDENCE,
            "selected_keys": SELECTED,
            "trace_instances": TRACE_INSTANCES,
            "time": "median over repeats of seconds per call (blocked)",
            "peer": "jax.jit(jax.vmap(unravel)) of jax.flatten_util.ravel_pytree",
        },
        "goals": {
            "decode_ratio_ours_over_peer_max": DECODE_RATIO_GOAL,
            "mask_bytes_max": "N^2",
            "traces": TRACE_GOAL,
            "met": goals,
        },
        "total_s": elapsed,
        "results": records,
    }
    text = json.dumps(payload, indent=2) + "\n"
    json_path = write_atomically(
        args.out_dir / f"{RESULTS_STEM}.json", lambda tmp: tmp.write_text(text)
    )
    title = (
        f"tfmpe Tokens, hierarchical Gaussian, {args.samples:,} samples; "
        f"jax {machine['jax']} {machine['backend']}, {machine['cpu_count']} CPUs"
    )
    plot(records, title, args.out_dir / f"{RESULTS_STEM}.png")
    print(f"wrote {json_path} and {RESULTS_STEM}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
