"""The benchmarks' run record and result writing.

Every results JSON of this package carries the same ``run`` record (when,
which command, which source tree, which machine and library versions), made
by :func:`run_info`, and is written by :func:`write_results`.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import jax

from jax_smm.persistence import atomic_write

PACKAGE_DIR = Path(__file__).resolve().parents[1]
DISTRIBUTIONS = ("calibrated-response", "jax-smm", "jax", "jaxlib", "optax", "numpy")


def _git(*command: str) -> str | None:
    """Output of a git command in this package's checkout (``None`` without git)."""
    try:
        done = subprocess.run(
            ["git", "-C", str(PACKAGE_DIR), *command],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def _version(distribution: str) -> str | None:
    """Installed version of ``distribution`` (``None`` if absent)."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def run_info() -> dict[str, Any]:
    """The ``run`` record of a results JSON.

    Returns
    -------
    dict
        ``timestamp`` (UTC, ISO 8601), ``command``, ``git`` (``commit`` and
        ``dirty``: whether the package's sources differ from it), ``machine``
        (platform, Python, CPU counts, JAX backend and devices) and
        ``versions`` of the libraries timed.
    """
    status = _git("status", "--porcelain", "--", "src")
    return {
        "timestamp": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "git": {
            "commit": _git("rev-parse", "HEAD"),
            "dirty": None if status is None else bool(status),
        },
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "backend": jax.default_backend(),
            "devices": [str(device) for device in jax.devices()],
        },
        "versions": {name: _version(name) for name in DISTRIBUTIONS},
    }


def write_results(path: Path, result: dict[str, Any]) -> None:
    """Write ``result`` with a ``run`` record as indented JSON, atomically."""
    text = json.dumps({"run": run_info(), **result}, indent=2) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
