"""The ``fit_smm`` callback of ``bench_fit_rf00379.py`` and what its curve yields."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import numpy as np
from rf00379 import pearson

THRESHOLDS = (0.8, 0.9, 0.95)


@dataclass
class CurvePoint:
    """One callback of the fit.

    Attributes
    ----------
    seconds : float
        Wall seconds since ``fit_smm`` was called, at the callback's entry.
    iterations : int
        Iterations done.
    pearson : float
        Pearson of model vs target connected correlations.
    chunk_seconds : float
        Wall seconds of the chunk just finished, callback time excluded.
    callback_seconds : float
        Wall seconds this callback took.
    """

    seconds: float
    iterations: int
    pearson: float
    chunk_seconds: float
    callback_seconds: float = 0.0


@dataclass
class PearsonMonitor:
    """The ``fit_smm`` callback: records the curve and decides when to stop.

    Attributes
    ----------
    model_cc : callable
        ``chain states -> connected correlations`` of the model.
    target_cc : numpy.ndarray
        Connected correlations of the targets (computed once).
    stop_at : float
        Stop once the Pearson reaches this.
    max_seconds : float
        Stop once this many wall seconds have passed.
    start : float
        ``time.perf_counter()`` when ``fit_smm`` was called.
    log : callable
        Called with a progress line after each chunk.
    points : list of CurvePoint
    stop_reason : str
    """

    model_cc: Callable[[dict[str, jax.Array]], np.ndarray]
    target_cc: np.ndarray
    stop_at: float
    max_seconds: float
    start: float = 0.0
    log: Callable[[str], None] = field(default=lambda line: print(line, flush=True))
    points: list[CurvePoint] = field(default_factory=list)
    stop_reason: str = "iteration cap"
    _last_exit: float = 0.0

    def begin(self) -> None:
        """Mark the call of ``fit_smm``."""
        self.start = time.perf_counter()
        self._last_exit = self.start

    def __call__(self, iterations: int, states: dict[str, jax.Array]) -> bool:
        """Score the current chains; return ``True`` to stop the fit."""
        entry = time.perf_counter()
        model_cc = self.model_cc(states)
        point = CurvePoint(
            seconds=entry - self.start,
            iterations=int(iterations),
            pearson=pearson(model_cc, self.target_cc),
            chunk_seconds=entry - self._last_exit,
        )
        self.points.append(point)
        self.log(
            f"  {point.seconds:8.1f} s  it {point.iterations:6d}  "
            f"pearson {point.pearson:.4f}"
        )
        stop = False
        if point.pearson >= self.stop_at:
            self.stop_reason, stop = f"pearson >= {self.stop_at}", True
        elif time.perf_counter() - self.start >= self.max_seconds:
            self.stop_reason, stop = f"time limit {self.max_seconds:g} s", True
        self._last_exit = time.perf_counter()
        point.callback_seconds = self._last_exit - entry
        return stop


def timing_summary(points: Sequence[CurvePoint], chunk_size: int) -> dict[str, Any]:
    """Seconds per iteration and the one-off overhead of the first chunk.

    Parameters
    ----------
    points : sequence of CurvePoint
    chunk_size : int
        Iterations per chunk.

    Returns
    -------
    dict
        ``seconds_per_iteration`` (median over full chunks after the first,
        callback excluded), ``callback_seconds_median``, and
        ``first_chunk_overhead_seconds``: the first chunk's time minus a typical
        chunk's, i.e. setup plus compilation (``None`` with fewer than two
        chunks).
    """
    later = [
        p.chunk_seconds
        for prev, p in itertools.pairwise(points)
        if p.iterations - prev.iterations == chunk_size
    ]
    typical = float(np.median(later)) if later else None
    return {
        "seconds_per_iteration": None if typical is None else typical / chunk_size,
        "chunk_seconds_median": typical,
        "callback_seconds_median": (
            float(np.median([p.callback_seconds for p in points])) if points else None
        ),
        "first_chunk_seconds": points[0].chunk_seconds if points else None,
        "first_chunk_overhead_seconds": (
            None if typical is None else max(points[0].chunk_seconds - typical, 0.0)
        ),
    }


def threshold_crossings(
    points: Sequence[CurvePoint], overhead: float | None
) -> dict[str, dict[str, Any] | None]:
    """First callback at which the Pearson reaches each threshold.

    Parameters
    ----------
    points : sequence of CurvePoint
    overhead : float or None
        Estimated setup + compile seconds, subtracted for the compile-excluded
        time.

    Returns
    -------
    dict
        ``{"0.9": {"seconds", "seconds_excluding_compile", "iterations",
        "pearson"}}`` per threshold, ``None`` where never reached.
    """
    out: dict[str, dict[str, Any] | None] = {}
    for level in THRESHOLDS:
        hit = next((p for p in points if p.pearson >= level), None)
        out[f"{level:g}"] = (
            None
            if hit is None
            else {
                "seconds": hit.seconds,
                "seconds_excluding_compile": (
                    None if overhead is None else hit.seconds - overhead
                ),
                "iterations": hit.iterations,
                "pearson": hit.pearson,
            }
        )
    return out
