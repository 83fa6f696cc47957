"""Data and measurements of ``bench_tokens.py`` (tables, figure: ``tokens_report``)."""

from __future__ import annotations

import argparse
import copy
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from harness import check_equal, first_call, time_calls
from peers import ravel_pytree

from tfmpe.preprocessing import Tokens, masks

OBS_PER_GROUP = 5
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
    peer, flat_samples = ravel_pytree.unravel_decoder(data)
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
