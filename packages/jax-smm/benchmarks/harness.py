"""Shared helpers of the benchmark scripts: timing, the run record, output.

Both ``bench_sampler.py`` and ``bench_fit_rf00379.py`` take their timing loop,
the ``run`` record of their results JSON (machine, library versions, git
commit and dirty flag, command line, timestamp, load averages), atomic JSON
writing and the location of reference data from here.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import jax

from jax_smm.persistence import atomic_write

PACKAGE_DIR = Path(__file__).resolve().parents[1]
LIBRARIES = ("jax", "jaxlib", "numpy", "optax", "thrml", "jax-smm")
REFERENCE_DATA_ENV = "REFERENCE_DATA_DIR"
# the project's reference data folder, beside the checkout (not copied into it)
DEFAULT_REFERENCE_DATA = PACKAGE_DIR.parents[2] / "shared" / "data"


def reference_data(name: str) -> Path:
    """Path of the third-party reference file ``name``.

    Looked up in ``$REFERENCE_DATA_DIR`` when set, else in the project's
    reference data folder beside the checkout. The file may be absent: callers
    decide whether that skips or fails.
    """
    folder = os.environ.get(REFERENCE_DATA_ENV)
    return (Path(folder) if folder else DEFAULT_REFERENCE_DATA) / name


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


# ---------------------------------------------------------------- run record


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


def git_state() -> dict[str, Any]:
    """Commit of this checkout and whether the package's code differs from it.

    ``dirty`` covers ``src/`` and ``benchmarks/`` (stored results excluded);
    both values are ``None`` where git cannot say.
    """

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

    status = git(
        "status", "--porcelain", "--", "src", "benchmarks", ":!benchmarks/results"
    )
    return {
        "commit": git("rev-parse", "HEAD"),
        "dirty": None if status is None else bool(status),
    }


@dataclass(frozen=True)
class RunRecord:
    """The ``run`` record at the top of every results JSON of the package.

    Attributes
    ----------
    timestamp : str or None
        UTC time the results were written (ISO 8601, seconds).
    command : list of str
        The command line.
    git : dict
        ``commit`` and ``dirty`` (see :func:`git_state`), taken at the start.
    versions : dict
        Python and the installed versions of the libraries involved.
    machine : dict
        JAX backend and devices, CPU model and counts, platform.
    load_average : dict
        ``before`` and ``after``: the 1, 5 and 15 minute load averages at the
        start and at the end of the run.
    """

    timestamp: str | None
    command: list[str]
    git: dict[str, Any]
    versions: dict[str, str | None]
    machine: dict[str, Any]
    load_average: dict[str, list[float] | None]


def start_run() -> RunRecord:
    """Take the run record's start: command, git state, machine, load before."""
    device = jax.devices()[0]
    return RunRecord(
        timestamp=None,
        command=[sys.executable, *sys.argv],
        git=git_state(),
        versions={
            "python": platform.python_version(),
            **versions(LIBRARIES),
        },
        machine={
            "backend": jax.default_backend(),
            "device_kind": device.device_kind,
            "device_count": jax.device_count(),
            "jax_devices": [str(d) for d in jax.devices()],
            "cpu_model": cpu_model(),
            "cpu_count": os.cpu_count(),
            "cpu_affinity": usable_cpus(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
        },
        load_average={"before": load_average(), "after": None},
    )


def run_record(started: RunRecord) -> dict[str, Any]:
    """The ``run`` record of a results JSON: ``started`` with its end filled in.

    Every benchmark writes its results with this record under the top-level
    key ``"run"``.
    """
    finished = replace(
        started,
        timestamp=datetime.now(UTC).isoformat(timespec="seconds"),
        load_average={**started.load_average, "after": load_average()},
    )
    return asdict(finished)


# ------------------------------------------------------------------- output


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` as indented JSON, atomically."""
    text = json.dumps(payload, indent=2) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
