"""Shared harness of the tfmpe benchmarks: timing, checks and recording.

Timing (``time_calls``, ``first_call``), bit-for-bit
result checks (``check_equal``) and the one results schema: ``write_results``
writes ``{"benchmark", "run", "settings", "results"}`` as ``<stem>.json``, where
``run`` is the :class:`RunRecord` of this process (machine, library versions,
git commit and dirty flag, command line, timestamp).
"""

from __future__ import annotations

import dataclasses
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

from tfmpe.io import atomic_write

VERSIONED = ("tfmpe", "jax", "flax", "optax", "diffrax", "flowjax", "scikit-learn")
PACKAGE = Path(__file__).resolve().parents[1]


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
            cwd=PACKAGE,
        )
    except OSError:
        return None
    return done.stdout.rstrip() if done.returncode == 0 else None


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """Where, with what and from which code a benchmark ran.

    Attributes
    ----------
    machine : dict
        Platform, CPU count, load averages, JAX backend and devices.
    versions : dict
        Python and the libraries in ``VERSIONED`` (``"not installed"`` if absent).
    git_commit : str or None
        ``HEAD`` of the repository (None outside a git checkout).
    git_dirty : bool or None
        Whether the package had uncommitted changes.
    command : list of str
        The interpreter and the command line.
    created : str
        UTC timestamp (ISO 8601, seconds).
    """

    machine: dict[str, Any]
    versions: dict[str, str]
    git_commit: str | None
    git_dirty: bool | None
    command: list[str]
    created: str


def run_record() -> RunRecord:
    """The :class:`RunRecord` of this process."""
    versions = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    status = _git("status", "--porcelain", "--", ".")
    machine = {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "load_average_1_5_15": list(os.getloadavg()),
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
    }
    return RunRecord(
        machine=machine,
        versions=versions,
        git_commit=_git("rev-parse", "HEAD"),
        git_dirty=None if status is None else bool(status),
        command=[sys.executable, *sys.argv],
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def write_results(
    out_dir: Path,
    stem: str,
    settings: Mapping[str, Any],
    results: Any,
    run: RunRecord | None = None,
) -> Path:
    """Write ``<stem>.json`` atomically; returns its path.

    Parameters
    ----------
    out_dir : Path
    stem : str
        Name of the benchmark and of the file.
    settings : mapping
        What the run was asked to do (sizes, repeats, ``quick``).
    results : object
        What it measured (JSON-serializable).
    run : RunRecord, optional
        Default: :func:`run_record` now.
    """
    payload = {
        "benchmark": stem,
        "run": dataclasses.asdict(run or run_record()),
        "settings": dict(settings),
        "results": results,
    }
    text = json.dumps(payload, indent=1, default=str) + "\n"
    return atomic_write(out_dir / f"{stem}.json", lambda tmp: tmp.write_text(text))


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


def format_time(seconds: float) -> str:
    """Seconds as a short string in µs or ms."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    return f"{seconds * 1e3:.2f} ms"
