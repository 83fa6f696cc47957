"""Small shared helpers of scribe's benchmarks: clocks, records, results files.

Standard library only at import, so that a peer running under another
interpreter (the scvi-tools environment) can import it too:
``sys.path.insert(0, <benchmarks>)``. A peer hands its record to the driver on
stdout (:func:`print_record`, :func:`parse_record`); only the driver writes
files, through ``scribe.io.atomic_write`` (:func:`write_results`).
"""

from __future__ import annotations

import importlib.metadata
import itertools
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPOSITORY = Path(__file__).resolve().parents[3]
SCVI_PYTHON = REPOSITORY / ".venv-scvi" / "bin" / "python"
RECORD_PREFIX = "SCRIBE_BENCH_RECORD "  # a peer's record line on stdout
EPOCH_MARKER = "SCVI_EPOCH_DONE"  # the scvi-tools peer's line after every epoch


def peak_rss_gb() -> float:
    """Peak resident memory of this process so far, in GB (10^9 bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak * (1 if sys.platform == "darwin" else 1024) / 1e9  # KiB on Linux


def current_rss_gb() -> float | None:
    """Resident memory of this process now, in GB (``None`` off Linux)."""
    try:
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[1])
    except OSError:
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e9


def summarize(seconds: Sequence[float]) -> dict[str, Any]:
    """Median, minimum and every value of a list of timings."""
    values = [float(s) for s in seconds]
    return {
        "median": statistics.median(values) if values else None,
        "min": min(values) if values else None,
        "all": values,
    }


def epoch_seconds(
    marks: Sequence[tuple[float, int]], steps_per_epoch: int
) -> list[float]:
    """Seconds of each whole epoch after the first progress mark.

    ``marks`` are ``(clock, steps done)`` pairs from a fit that reports progress
    every chunk of steps; the first chunk (set-up, compile) is the warm-up and
    the epochs start where it ends. Chunks need not end on epoch boundaries:
    the clock is interpolated linearly in the steps between marks. Epochs whose
    end lies past the last mark are left out.
    """
    clocks = [c for c, _ in marks]
    steps = [n for _, n in marks]

    def clock_at(step: int) -> float:
        i = next(i for i in range(1, len(steps)) if steps[i] >= step)
        frac = (step - steps[i - 1]) / max(steps[i] - steps[i - 1], 1)
        return clocks[i - 1] + frac * (clocks[i] - clocks[i - 1])

    if len(marks) < 2:
        return []
    n_epochs = (steps[-1] - steps[0]) // steps_per_epoch
    bounds = [clocks[0]]
    bounds += [clock_at(steps[0] + k * steps_per_epoch) for k in range(1, n_epochs + 1)]
    return [b - a for a, b in itertools.pairwise(bounds)]


def record_progress(module: Any, marks: list[tuple[float, int]]) -> bool:
    """Make ``module``'s ``tqdm`` append ``(clock, steps done)`` at every update.

    Works with the bar disabled too (``update`` is still called). Returns
    whether ``module`` uses a ``tqdm`` to patch.
    """
    base = getattr(module, "tqdm", None)
    if base is None:
        return False

    class Marks(base):  # type: ignore[misc, valid-type]
        def update(self, n: float | None = 1) -> Any:
            done = (marks[-1][1] if marks else 0) + int(n or 0)
            marks.append((time.perf_counter(), done))
            return super().update(n)

    module.tqdm = Marks
    return True


def run_process(command: list[str]) -> dict[str, Any]:
    """Run a process that prints its record (:func:`print_record`); return it.

    Adds ``process_s`` (wall seconds of the whole process). On failure the
    returned record is ``{"error": ..., "output_tail": ...}`` and the output is
    printed.
    """
    with Clock() as clock:
        try:
            proc = subprocess.run(command, capture_output=True, text=True)
        except OSError as error:  # e.g. the interpreter does not exist
            print(f"FAILED: {' '.join(command)}: {error}", flush=True)
            return {"error": str(error)}
    record = parse_record(proc.stdout)
    if proc.returncode != 0 or record is None:
        tail = (proc.stdout + proc.stderr)[-3000:]
        print(f"FAILED ({proc.returncode}): {' '.join(command)}\n{tail}", flush=True)
        return {"error": f"exit code {proc.returncode}", "output_tail": tail}
    return record | {"process_s": clock.seconds}


class Clock:
    """Wall-clock seconds of a block: ``with Clock() as c: ...; c.seconds``."""

    def __enter__(self) -> Clock:
        self.start = time.perf_counter()
        self.seconds = math.nan
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start


def machine_info() -> dict[str, Any]:
    """CPU count, platform, Python and the load average now."""
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "cpu_count": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else None,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "load_average": load,
    }


def versions(names: Iterable[str]) -> dict[str, str | None]:
    """Installed versions of distributions (``None`` where absent)."""
    found: dict[str, str | None] = {}
    for name in names:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def git_output(cwd: Path, *args: str) -> str | None:
    """Stdout of ``git args`` run in ``cwd``, right-stripped (``None``: it failed)."""
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.rstrip() if done.returncode == 0 else None


def git_state(path: Path) -> dict[str, Any]:
    """Commit of the repository holding ``path`` and whether its tree is dirty."""
    status = git_output(path, "status", "--porcelain", "--untracked-files=no")
    return {
        "commit": git_output(path, "rev-parse", "HEAD"),
        "dirty": None if status is None else bool(status),
    }


def format_rows(rows: Iterable[tuple[str, str]]) -> str:
    """Two-column plain-text table: labels padded to the longest plus two."""
    rows = list(rows)
    width = max(len(label) for label, _ in rows) + 2
    return "\n".join(f"{label:<{width}}{value}" for label, value in rows)


def find_scvi_python(requested: str | os.PathLike | None) -> Path | None:
    """The scvi-tools interpreter: ``requested``, ``$SCRIBE_SCVI_PYTHON``, the venv.

    The venv is ``<repository>/.venv-scvi``, used only if it exists; ``None``
    when none is found.
    """
    if requested:
        return Path(requested)
    from_env = os.environ.get("SCRIBE_SCVI_PYTHON")
    if from_env:
        return Path(from_env)
    return SCVI_PYTHON if SCVI_PYTHON.exists() else None


def print_record(record: Any) -> None:
    """Print a peer's record as one JSON line on stdout, for :func:`parse_record`."""
    print(RECORD_PREFIX + json.dumps(record, allow_nan=True), flush=True)


def parse_record(output: str) -> Any:
    """The last record :func:`print_record` put in ``output`` (``None``: none)."""
    lines = [s for s in output.splitlines() if s.startswith(RECORD_PREFIX)]
    return json.loads(lines[-1][len(RECORD_PREFIX) :]) if lines else None


def run_record(libraries: Iterable[str], **machine: Any) -> dict[str, Any]:
    """The top-level ``run`` record of every results JSON of scribe's benchmarks.

    Parameters
    ----------
    libraries : iterable of str
        Distributions whose installed versions are recorded (``None``: absent).
    **machine
        Added to :func:`machine_info` (e.g. JAX's backend).

    Returns
    -------
    dict
        ``machine``, ``versions``, ``git`` (``commit``, ``dirty``), ``command``
        (the interpreter and its arguments) and ``timestamp_utc``.
    """
    return {
        "machine": machine_info() | machine,
        "versions": versions(libraries),
        "git": git_state(REPOSITORY),
        "command": [sys.executable, *sys.argv],
        "timestamp_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def write_results(path: Path, run: dict[str, Any], record: dict[str, Any]) -> Path:
    """Write ``{"run": run, **record}`` as JSON to ``path``, whole.

    ``run`` is :func:`run_record`'s, completed here with the load average at
    the end (``machine.load_average_end``). The file goes through
    ``scribe.io.atomic_write`` (imported here: peers never call this).
    """
    from scribe.io import atomic_write

    run["machine"]["load_average_end"] = machine_info()["load_average"]
    text = json.dumps({"run": run, **record}, indent=2, allow_nan=True) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text))
