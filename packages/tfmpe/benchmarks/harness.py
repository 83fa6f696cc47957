"""Shared harness of the tfmpe benchmarks: timing, checks and recording.

Timing (``seconds_per_call``, ``time_calls``, ``first_call``), bit-for-bit
result checks (``check_equal``), run and machine information (``run_info``,
``machine_info``) and atomic JSON output. ``write_results`` writes the results
schema ``{"benchmark", "created", "run", "settings", "results"}`` of the
estimator benchmark as ``<stem>.json`` next to the figures.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jax
import numpy as np

from tfmpe.io import write_atomically

VERSIONED = ("tfmpe", "jax", "flax", "optax", "diffrax", "flowjax", "scikit-learn")


def log(message: str) -> None:
    """A progress line on stderr (flushed)."""
    print(message, file=sys.stderr, flush=True)


def _git(*command: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *command],
            capture_output=True,
            text=True,
            check=False,
            cwd=Path(__file__).resolve().parent,
        )
    except OSError:
        return None
    return done.stdout.rstrip() if done.returncode == 0 else None


def run_info() -> dict[str, Any]:
    """Versions, machine, load, JAX devices and git state of this run."""
    versions = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    modified = _git("status", "--porcelain", "--", "../src")
    return {
        "versions": versions,
        "cpu_count": os.cpu_count(),
        "devices": [str(d) for d in jax.devices()],
        "load_average_1_5_15": list(os.getloadavg()),
        "platform": platform.platform(),
        "git_commit": _git("rev-parse", "HEAD"),
        "src_modified": None if modified is None else modified.splitlines(),
    }


def seconds_per_call(fn: Callable[[], Any], repeats: int = 5, calls: int = 3) -> float:
    """Median over ``repeats`` of the mean time of ``calls`` blocking calls.

    The first call (compilation) is made and discarded before timing.
    """
    jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        for _ in range(calls):
            jax.block_until_ready(fn())
        times.append((time.perf_counter() - tic) / calls)
    return float(sorted(times)[len(times) // 2])


def write_results(
    out_dir: Path, stem: str, settings: dict[str, Any], results: Any
) -> Path:
    """Write ``<stem>.json`` atomically; returns its path."""
    payload = {
        "benchmark": stem,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "run": run_info(),
        "settings": settings,
        "results": results,
    }
    return write_json(out_dir / f"{stem}.json", payload)


def write_json(path: Path, payload: Any, indent: int = 1) -> Path:
    """Write ``payload`` as JSON (and a newline) atomically; returns ``path``."""
    text = json.dumps(payload, indent=indent, default=str) + "\n"
    return write_atomically(path, lambda p: p.write_text(text))


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
