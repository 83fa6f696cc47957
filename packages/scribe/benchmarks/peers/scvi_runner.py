"""Run ``scvi_epoch.py`` under the scvi-tools interpreter, in turns with a caller.

scvi-tools and PyTorch live in another environment (``harness.find_scvi_python``),
so the peer runs in a subprocess that prints ``harness.EPOCH_MARKER`` after every epoch,
waits for a line on stdin, and prints its record at the end.
"""

from __future__ import annotations

import argparse
import queue
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from harness import EPOCH_MARKER, find_scvi_python, parse_record

from scribe.io import atomic_write

HELPER = Path(__file__).resolve().parent / "scvi_epoch.py"
TIMEOUT_S = 600


class ScviUnavailable(RuntimeError):
    """The scvi-tools helper could not start, failed or stalled."""


def scvi_command(
    python: Path,
    counts_path: Path,
    args: argparse.Namespace,
    n_latent: int,
    n_hidden: int,
) -> list[str]:
    """The helper's command line: ``epochs + 1`` epochs, handshake after each."""
    return [
        *(str(python), str(HELPER), "--counts", str(counts_path)),
        *("--epochs", str(args.epochs + 1)),
        *("--batch-size", str(args.batch_size), "--n-latent", str(n_latent)),
        *("--n-hidden", str(n_hidden), "--seed", str(args.seed), "--handshake"),
    ]


def pump_lines(stream: Any, lines: queue.Queue[str | None]) -> None:
    """Put every line of ``stream`` into ``lines``, then ``None`` at its end."""
    for line in stream:
        lines.put(line)
    lines.put(None)


def run_scvi_interleaved(
    python: Path,
    counts: np.ndarray,
    args: argparse.Namespace,
    between: Callable[[], None],
    n_latent: int,
    n_hidden: int,
) -> dict[str, Any]:
    """Time SCVI's epochs in a subprocess, calling ``between`` before each.

    SCVI's warm-up epoch, then ``between()`` (one scribe epoch) and one SCVI
    epoch, ``args.epochs`` times. An SCVI epoch is timed here, from the go line
    to its marker.

    Parameters
    ----------
    python : Path
        Interpreter with scvi-tools installed.
    counts : ndarray
        ``int32[cells, genes]``.
    args : argparse.Namespace
        ``batch_size``, ``epochs``, ``seed``.
    between : callable
        Called before every timed SCVI epoch.
    n_latent, n_hidden : int
        SCVI's latent and hidden sizes.

    Returns
    -------
    dict
        ``available``, ``python``, the epoch timings and the helper's record.

    Raises
    ------
    ScviUnavailable
        If the helper cannot start, fails, or stalls past :data:`TIMEOUT_S`.
    """
    with tempfile.TemporaryDirectory() as folder, tempfile.TemporaryFile("w+") as log:
        counts_path = Path(folder) / "counts.npy"
        atomic_write(counts_path, lambda tmp: np.save(tmp, counts))
        command = scvi_command(python, counts_path, args, n_latent, n_hidden)

        def failed(returncode: int | None) -> ScviUnavailable:
            log.seek(0)  # the helper's stderr, read back for its last lines
            tail = " | ".join(log.read().strip().splitlines()[-5:])
            return ScviUnavailable(f"{python} exited {returncode}: {tail}")

        start = time.perf_counter()
        try:
            proc = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        except OSError as error:
            raise ScviUnavailable(f"{type(error).__name__}: {error}") from error
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(
            target=pump_lines, args=(proc.stdout, lines), daemon=True
        ).start()

        def wait_epoch() -> None:
            deadline = time.perf_counter() + TIMEOUT_S
            while True:
                try:
                    line = lines.get(timeout=max(deadline - time.perf_counter(), 0))
                except queue.Empty:
                    proc.kill()
                    raise ScviUnavailable(f"no epoch within {TIMEOUT_S} s") from None
                if line is None:
                    raise failed(proc.wait())
                if line.startswith(EPOCH_MARKER):
                    return

        try:
            wait_epoch()
            first_epoch_s = time.perf_counter() - start
            epoch_s = []
            for _ in range(args.epochs):
                between()
                tick = time.perf_counter()
                proc.stdin.write("go\n")
                proc.stdin.flush()
                wait_epoch()
                epoch_s.append(time.perf_counter() - tick)
            proc.stdin.write("go\n")
            proc.stdin.close()
            rest = []  # the helper's last lines: its record
            try:
                while (line := lines.get(timeout=TIMEOUT_S)) is not None:
                    rest.append(line)
            except queue.Empty:
                raise ScviUnavailable(f"no record within {TIMEOUT_S} s") from None
            returncode = proc.wait(timeout=TIMEOUT_S)
        finally:
            if proc.poll() is None:
                proc.kill()
        helper = parse_record("".join(rest))
        if returncode != 0 or helper is None:
            raise failed(returncode)
    return {
        "available": True,
        "python": str(python),
        "epoch_s": epoch_s,
        "median_epoch_s": statistics.median(epoch_s),
        "min_epoch_s": min(epoch_s),
        "start_to_first_epoch_s": first_epoch_s,
        "helper": helper,
    }


def scvi_record(
    counts: np.ndarray,
    args: argparse.Namespace,
    between: Callable[[], None],
    n_latent: int,
    n_hidden: int,
) -> dict[str, Any]:
    """:func:`run_scvi_interleaved`, or ``available: False`` and the ``reason``.

    ``args`` also gives ``no_scvi`` and ``scvi_python``.
    """
    if args.no_scvi:
        return {"available": False, "reason": "skipped (--no-scvi)"}
    python = find_scvi_python(args.scvi_python)
    if python is None:
        return {"available": False, "reason": "no interpreter with scvi-tools found"}
    try:
        return run_scvi_interleaved(python, counts, args, between, n_latent, n_hidden)
    except ScviUnavailable as error:
        return {"available": False, "reason": str(error)}
