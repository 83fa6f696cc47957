"""Shared helpers of the benchmark scripts: timing, machine, sources, output.

Both ``bench_sampler.py`` and ``bench_fit_rf00379.py`` take their timing loop,
machine information, installed versions, git state and atomic JSON writing
from here. (The two scripts record the machine under different keys, kept as
they were so that their JSON stays comparable across runs.)
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any, Protocol

import jax
import numpy as np

from jax_smm.persistence import atomic_write

PACKAGE_DIR = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------- timing


class Timed(Protocol):
    """Anything with an untimed warm-up and numbered timed calls."""

    def warm_up(self) -> None:
        """Run the untimed warm-up call."""

    def run(self, call: int) -> None:
        """Run one timed call; return once it is done."""


def time_calls(target: Timed, repeats: int) -> list[float]:
    """Warm up, then time ``repeats`` calls; seconds per call."""
    target.warm_up()
    times = []
    for call in range(repeats):
        start = time.perf_counter()
        target.run(call)
        times.append(time.perf_counter() - start)
    return times


# ------------------------------------------------------------ machine, sources


def version_of(distribution: str) -> str | None:
    """Installed version of a distribution, ``None`` if absent."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions(distributions: tuple[str, ...]) -> dict[str, str | None]:
    """``{distribution: installed version or None}``."""
    return {dist: version_of(dist) for dist in distributions}


def cpu_model() -> str | None:
    """CPU model name from ``/proc/cpuinfo`` where there is one."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def usable_cpus() -> int | None:
    """CPUs this process may run on (``None`` where the OS does not say)."""
    if not hasattr(os, "sched_getaffinity"):  # not on Linux
        return None
    return len(os.sched_getaffinity(0))


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (``None`` where unavailable)."""
    try:
        return list(os.getloadavg())
    except OSError:
        return None


def source_state() -> dict[str, Any]:
    """Git commit of this checkout and whether jax_smm's sources differ from it."""

    def git(*cmd: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(PACKAGE_DIR), *cmd],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip()

    status = git("status", "--porcelain", "--", "src")
    return {
        "commit": git("rev-parse", "HEAD"),
        "jax_smm_src_modified": None if status is None else bool(status),
    }


def machine_info() -> dict[str, Any]:
    """Versions, JAX backend and devices, and CPU (``bench_sampler.py``'s record)."""
    device = jax.devices()[0]
    return {
        "jax": jax.__version__,
        "jaxlib": version_of("jaxlib"),
        "numpy": np.__version__,
        "thrml": version_of("thrml"),
        "jax_smm": version_of("jax-smm"),
        "python": platform.python_version(),
        "backend": jax.default_backend(),
        "device_kind": device.device_kind,
        "device_count": jax.device_count(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": usable_cpus(),
        "cpu_model": cpu_model(),
        "platform": platform.platform(),
    }


def fit_machine_info() -> dict[str, Any]:
    """Versions, CPU counts and load average (``bench_fit_rf00379.py``'s record)."""
    return {
        "versions": versions(("jax", "jaxlib", "optax", "numpy", "jax-smm")),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable_cpus(),
        "jax_devices": [str(d) for d in jax.devices()],
        "load_average_1_5_15": load_average(),
    }


# ------------------------------------------------------------------- output


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` as indented JSON, atomically."""
    text = json.dumps(payload, indent=2) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
