"""Timing helpers of scribe's benchmarks that need JAX (``harness.py`` must not).

Every jitted function is compiled and run once before timing (its first-call
seconds are kept); the functions compared are then timed in alternating
repeats, so load from other processes on a shared machine hits all alike.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np
import optax
from numpyro.infer import SVI, Trace_ELBO


def first_call(fn: Callable[[], Any]) -> tuple[Any, float]:
    """Result and seconds of one blocked call (the first: trace + compile + run)."""
    start = time.perf_counter()
    result = jax.block_until_ready(fn())
    return result, time.perf_counter() - start


def time_interleaved(
    functions: Mapping[str, Callable[[], Any]], repeats: int, min_repeat_s: float
) -> dict[str, dict[str, Any]]:
    """Median seconds per call of each function, repeats alternating.

    Parameters
    ----------
    functions : mapping of str to callable
        Argument-free calls (already compiled); each result is blocked on.
    repeats : int
        Timed repeats per function.
    min_repeat_s : float
        Shortest duration of one repeat; sets the calls per repeat.

    Returns
    -------
    dict
        Per name: ``median_s``, ``min_s``, ``times_s`` (seconds per call, one per
        repeat) and ``calls_per_repeat``.
    """
    calls: dict[str, int] = {}
    for name, fn in functions.items():
        start = time.perf_counter()
        jax.block_until_ready(fn())
        once = max(time.perf_counter() - start, 1e-7)
        calls[name] = max(1, math.ceil(min_repeat_s / once))
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, fn in functions.items():
            start = time.perf_counter()
            for _ in range(calls[name]):
                jax.block_until_ready(fn())
            times[name].append((time.perf_counter() - start) / calls[name])
    return {
        name: {
            "median_s": statistics.median(values),
            "min_s": min(values),
            "times_s": values,
            "calls_per_repeat": calls[name],
        }
        for name, values in times.items()
    }


def time_compiled(
    functions: Mapping[str, Callable[[], Any]], repeats: int, min_repeat_s: float
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """:func:`first_call` of each function, then :func:`time_interleaved`.

    Returns the first call's result per name and the timings, each with its
    ``first_call_s``.
    """
    results: dict[str, Any] = {}
    first_call_s: dict[str, float] = {}
    for name, fn in functions.items():
        results[name], first_call_s[name] = first_call(fn)
    times = time_interleaved(functions, repeats, min_repeat_s)
    for name, seconds in first_call_s.items():
        times[name]["first_call_s"] = seconds
    return results, times


def time_epochs(
    step: Callable[[], Any], steps_per_epoch: int, epochs: int
) -> list[float]:
    """Seconds of each of ``epochs`` epochs of ``steps_per_epoch`` calls of ``step``."""
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        for _ in range(steps_per_epoch):
            result = step()
        jax.block_until_ready(result)
        times.append(time.perf_counter() - start)
    return times


def relative_difference(got: Any, expected: Any) -> float:
    """``||got - expected||_2 / ||expected||_2`` in float64."""
    got64 = np.asarray(got, np.float64)
    expected64 = np.asarray(expected, np.float64)
    return float(np.linalg.norm(got64 - expected64) / np.linalg.norm(expected64))


def make_stepper(
    model: Callable[..., None],
    guide: Callable[..., None],
    counts: jax.Array,
    batch_size: int,
    seed: int,
    learning_rate: float,
) -> tuple[Callable[[], Any], float, Callable[[], float]]:
    """A jitted SVI step (``Trace_ELBO``, ``optax.adam``) that carries its state.

    Parameters
    ----------
    model, guide : callable
        Called as ``fn(n_cells, n_genes, counts=..., batch_size=...)``.
    counts : Array
        ``[cells, genes]`` float32, passed to the jitted step as an argument.
    batch_size : int
        Cells per step (the plate's ``subsample_size``).
    seed : int
        Seed of the PRNG key of ``svi.init``.
    learning_rate : float
        Of ``optax.adam``.

    Returns
    -------
    step : callable
        One ``svi.update``; returns the new state and loss.
    first_call_s : float
        Seconds of the first step (trace, compile and run).
    last_loss : callable
        The loss of the latest step.
    """
    n_cells, n_genes = counts.shape
    svi = SVI(model, guide, optax.adam(learning_rate), Trace_ELBO())
    state = [
        svi.init(
            jax.random.key(seed), n_cells, n_genes, counts=counts, batch_size=batch_size
        )
    ]
    loss = [math.nan]
    update = jax.jit(
        lambda s, c: svi.update(s, n_cells, n_genes, counts=c, batch_size=batch_size)
    )

    def step() -> Any:
        state[0], loss[0] = update(state[0], counts)
        return state[0], loss[0]

    _, seconds = first_call(step)
    return step, seconds, lambda: float(loss[0])


def value_and_grad_differences(got: Any, expected: Any) -> dict[str, float]:
    """:func:`relative_difference` of each part of ``(value, (grad_r, grad_p))``."""
    value, (grad_r, grad_p) = got
    expected_value, (expected_r, expected_p) = expected
    return {
        "value": relative_difference(value, expected_value),
        "grad_r": relative_difference(grad_r, expected_r),
        "grad_p": relative_difference(grad_p, expected_p),
    }
