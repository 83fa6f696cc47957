"""Recording for the tfmpe estimator benchmark: run information and results.

One results schema: ``{"benchmark", "created", "run", "settings", "results"}``,
written atomically as ``<stem>.json`` next to the figures.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jax

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
    text = json.dumps(payload, indent=1, default=str) + "\n"
    return write_atomically(out_dir / f"{stem}.json", lambda p: p.write_text(text))
