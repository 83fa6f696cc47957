"""Recording for the kkt-nets benchmarks: run information, results, figures.

One results schema: ``{"benchmark", "run": run_info(), "settings",
"results"}``, written atomically as ``<stem>.json`` next to ``<stem>.png``.
The ``run`` record says where and when the numbers come from: machine,
library versions, git commit and whether the sources differed from it, the
command line and a UTC timestamp.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from kkt_nets.io import atomic_write

VERSIONED = ("kkt-nets", "torch", "torch_geometric", "highspy", "numpy", "scipy")


def log(message: str) -> None:
    """A progress line on stderr (flushed)."""
    print(message, file=sys.stderr, flush=True)


def _git(*command: str) -> str | None:
    """Stdout of a git command run next to this file (``None`` if it failed)."""
    try:
        done = subprocess.run(
            ["git", *command],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parent,
            check=False,
        )
    except OSError:
        return None
    return done.stdout.rstrip() if done.returncode == 0 else None


def run_info() -> dict[str, Any]:
    """Machine, versions, load, torch threads, git state, command and time of this run.

    Returns
    -------
    dict
        ``versions``, ``cpu_count``, ``torch_threads``, ``cuda`` (device
        name or ``None``), ``load_average_1_5_15``, ``platform``,
        ``git_commit``, ``git_dirty`` (the package's sources differ from the
        commit; ``None`` outside git), ``src_modified`` (those files),
        ``command`` (``sys.argv``) and ``timestamp`` (UTC, ISO 8601).
    """
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
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "load_average_1_5_15": list(os.getloadavg()),
        "platform": platform.platform(),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": None if modified is None else bool(modified),
        "src_modified": None if modified is None else modified.splitlines(),
        "command": [sys.executable, *sys.argv],
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def write_results(
    out_dir: Path,
    stem: str,
    settings: dict[str, Any],
    results: Any,
    plot: Callable[[Any, Path], None],
) -> Path:
    """Write ``<stem>.json`` (one schema) and ``<stem>.png`` (``plot``) atomically.

    Returns
    -------
    Path
        The JSON file.
    """
    payload = {
        "benchmark": stem,
        "run": run_info(),
        "settings": settings,
        "results": results,
    }
    text = json.dumps(payload, indent=1, default=str) + "\n"
    path = atomic_write(out_dir / f"{stem}.json", lambda tmp: tmp.write_text(text))
    plot(results, out_dir / f"{stem}.png")
    return path
