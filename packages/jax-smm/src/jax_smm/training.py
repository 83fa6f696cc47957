"""Stochastic moment matching: fit theta so that model moments equal targets.

Each iteration runs ``mcmc_steps_per_iteration`` sweeps of the persistent chains,
averages the factor-cell counts over *every* sweep and chain (the model moments),
and takes an optimiser step along ``target - model`` (the gradient of the
log-likelihood of the maximum-entropy family), minus an L2 penalty. The jitted
step takes the parameters as arguments, so one compilation serves the whole fit;
iterations run inside ``lax.scan`` chunks and a tqdm bar follows the chunks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from tqdm.auto import tqdm

from jax_smm.features import State, add_linear_terms, linear_expectations
from jax_smm.graph import FactorGraph, Plan, flatten_theta, unflatten_theta
from jax_smm.mcmc.buffer import PersistentBuffer, resolve_kernel
from jax_smm.mcmc.hybrid import HybridGibbs
from jax_smm.targets import (
    CompiledTargets,
    Targets,
    compile_targets,
    validate_states,
)

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("cosine", "constant")
FINAL_LR_FRACTION = 0.01


@dataclass(frozen=True)
class SMMConfig:
    """Settings of :func:`fit_smm`.

    Attributes
    ----------
    num_iterations : int
        Optimiser steps.
    num_chains : int
        Persistent chains.
    mcmc_steps_per_iteration : int
        Sweeps of every chain per iteration; moments average over all of them.
    learning_rate : float
        Step size of the optimiser.
    optimizer : {"sgd", "adam"}
        Optimiser (from optax).
    l2_regularization : float
        Weight of ``0.5 * l2 * |theta|^2`` on the fitted parameters.
    grad_clip : float or None
        Clip the gradient to this global norm (``None``: no clipping).
    param_clip : float or None
        Keep every fitted parameter (targeted theta cells and constraint
        multipliers) in ``[-param_clip, param_clip]`` after each step; bounds the
        log-potentials when targets are contradictory or on the boundary.
    schedule : {"cosine", "constant"}
        Learning-rate schedule. Moment estimates are noisy, so a constant step
        leaves theta jittering around the solution; the cosine decay (to 1 % of
        ``learning_rate`` at the last iteration) lets it settle (Robbins-Monro).
    average_fraction : float
        Polyak-Ruppert tail averaging: the returned parameters are the mean of
        the iterates over this final fraction of the iterations (0: the last
        iterate). Averaging cancels most of the jitter the noisy moment
        estimates leave in the parameters.
    seed : int
        Seed of the chains' initial states and of every MCMC draw.
    chunk_size : int
        Iterations per jitted ``lax.scan`` chunk (one progress-bar tick each).
    kernel : {"chromatic", "sequential"}
        MCMC kernel; chromatic block Gibbs is the default.
    progress : bool
        Show a tqdm progress bar.
    """

    num_iterations: int = 500
    num_chains: int = 256
    mcmc_steps_per_iteration: int = 2
    learning_rate: float = 0.05
    optimizer: Literal["sgd", "adam"] = "adam"
    l2_regularization: float = 0.0
    grad_clip: float | None = None
    param_clip: float | None = None
    schedule: Literal["cosine", "constant"] = "cosine"
    average_fraction: float = 0.0
    seed: int = 0
    chunk_size: int = 25
    kernel: Literal["chromatic", "sequential"] = "chromatic"
    progress: bool = True

    def __post_init__(self) -> None:
        for name in (
            "num_iterations",
            "num_chains",
            "mcmc_steps_per_iteration",
            "chunk_size",
        ):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not (np.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ValueError(
                f"learning_rate must be finite and > 0, got {self.learning_rate!r}"
            )
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}"
            )
        if not (np.isfinite(self.l2_regularization) and self.l2_regularization >= 0):
            raise ValueError(
                "l2_regularization must be finite and >= 0, "
                f"got {self.l2_regularization!r}"
            )
        for name in ("grad_clip", "param_clip"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be None or > 0, got {value!r}")
        if not 0.0 <= self.average_fraction < 1.0:
            raise ValueError(
                f"average_fraction must be in [0, 1), got {self.average_fraction!r}"
            )
        if self.schedule not in SCHEDULES:
            raise ValueError(
                f"schedule must be one of {SCHEDULES}, got {self.schedule!r}"
            )
        resolve_kernel(self.kernel)


class _StepSpec(NamedTuple):
    """The static (hashable) part of a training step: what changes the program."""

    kernel: HybridGibbs
    n_sweeps: int
    optimizer: str
    schedule: str
    grad_clip: float | None


class _Hyper(NamedTuple):
    """The numeric settings, traced: changing them does not recompile."""

    learning_rate: jax.Array
    num_iterations: jax.Array
    l2: jax.Array
    param_clip: jax.Array
    average_from: jax.Array


def make_optimizer(spec: _StepSpec, hyper: _Hyper) -> optax.GradientTransformation:
    """The optax optimiser of a step: schedule, optional clipping, SGD or Adam.

    The cosine schedule is ``lr * (a + (1 - a) (1 + cos(pi t / T)) / 2)`` with
    ``a = FINAL_LR_FRACTION``, written out because optax's needs a static ``T``.
    """

    def learning_rate(count: jax.Array) -> jax.Array:
        if spec.schedule == "constant":
            return hyper.learning_rate
        progress = jnp.minimum(count / hyper.num_iterations, 1.0)
        cosine = 0.5 * (1.0 + jnp.cos(jnp.pi * progress))
        return hyper.learning_rate * (
            FINAL_LR_FRACTION + (1.0 - FINAL_LR_FRACTION) * cosine
        )

    base = (
        optax.sgd(learning_rate)
        if spec.optimizer == "sgd"
        else optax.adam(learning_rate)
    )
    if spec.grad_clip is None:
        return base
    return optax.chain(optax.clip_by_global_norm(spec.grad_clip), base)


class _Carry(NamedTuple):
    params: dict[str, jax.Array]
    opt_state: Any
    states: State
    key: jax.Array
    iteration: jax.Array
    average: dict[str, jax.Array]


def effective_theta(params: dict[str, jax.Array], targets: CompiledTargets):
    """Flat log-potentials the model samples with: theta plus linear terms."""
    return add_linear_terms(params["theta"], params["lam"], targets.linear)


def _step(
    plan: Plan,
    targets: CompiledTargets,
    hyper: _Hyper,
    spec: _StepSpec,
    carry: _Carry,
) -> tuple[_Carry, tuple[jax.Array, ...]]:
    """One SMM iteration: sample, estimate moments, take an optimiser step."""
    params, opt_state, states, key, iteration, average = carry
    key, sample_key = jax.random.split(key)
    theta_ext = jnp.append(effective_theta(params, targets), 0.0)
    states, counts, _ = spec.kernel.step(
        plan, theta_ext, states, sample_key, spec.n_sweeps
    )
    model = counts / (spec.n_sweeps * states["cat"].shape[0])
    residual = (targets.values - model) * targets.mask
    lin_residual = targets.linear_values - linear_expectations(model, targets.linear)
    # optax minimises: the loss gradient is -(target - model) + l2 * param.
    grads = {
        "theta": -residual + hyper.l2 * params["theta"] * targets.mask,
        "lam": -lin_residual + hyper.l2 * params["lam"],
    }
    finite = jnp.all(jnp.isfinite(grads["theta"])) & jnp.all(jnp.isfinite(grads["lam"]))
    optimizer = make_optimizer(spec, hyper)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    bound = hyper.param_clip
    params = {
        "theta": jnp.where(
            targets.mask > 0, jnp.clip(params["theta"], -bound, bound), params["theta"]
        ),
        "lam": jnp.clip(params["lam"], -bound, bound),
    }
    # Running mean of the iterates from iteration ``average_from`` on.
    n_averaged = jnp.maximum(iteration - hyper.average_from + 1.0, 1.0)
    average = jax.tree.map(lambda a, p: a + (p - a) / n_averaged, average, params)
    errors = jnp.concatenate([jnp.abs(residual), jnp.abs(lin_residual)])
    num_targets = jnp.sum(targets.mask) + lin_residual.shape[0]
    max_error = jnp.max(errors, initial=0.0)
    mean_error = jnp.sum(errors) / jnp.maximum(num_targets, 1.0)
    carry = _Carry(params, opt_state, states, key, iteration + 1.0, average)
    return carry, (max_error, mean_error, finite)


@partial(jax.jit, static_argnames=("spec",))
def _train_chunk(
    plan: Plan,
    targets: CompiledTargets,
    carry: _Carry,
    active: jax.Array,
    hyper: _Hyper,
    spec: _StepSpec,
) -> tuple[_Carry, tuple[jax.Array, ...]]:
    """Run ``len(active)`` iterations; inactive ones (chunk padding) do nothing."""

    def body(carry, is_active):
        def skip(c):
            return c, (jnp.float32(0), jnp.float32(0), jnp.bool_(True))

        step = partial(_step, plan, targets, hyper, spec)
        return lax.cond(is_active, step, skip, carry)

    return lax.scan(body, carry, active)


def fit_smm(
    graph: FactorGraph,
    targets: Targets,
    config: SMMConfig | None = None,
    initial_states: State | None = None,
    callback: Callable[[int, State], bool | None] | None = None,
) -> tuple[FactorGraph, dict[str, Any]]:
    """Fit the graph's factor tables so that model moments match ``targets``.

    Parameters
    ----------
    graph : FactorGraph
        The model; its current theta is the starting point. Factors without a
        target keep their theta.
    targets : Targets
        From :func:`build_targets_from_marginals` or
        :func:`build_targets_from_samples`.
    config : SMMConfig, optional
        Settings (defaults if omitted).
    initial_states : dict, optional
        Chain states to start from (e.g. ``history["states"]`` of an earlier
        fit); their number of chains overrides ``config.num_chains``. Uniformly
        random if omitted.
    callback : callable, optional
        Called after every chunk as ``callback(iterations_done, chain_states)``;
        returning ``True`` stops the fit there (the history then ends early).

    Returns
    -------
    graph : FactorGraph
        A copy whose factors carry the fitted tables (linear constraint terms
        ``lambda * W`` folded in).
    history : dict
        Per iteration: ``iteration``, ``max_error``, ``mean_error`` (moment
        errors of that iteration's estimate) and ``runtime`` (seconds since the
        start of the fit, interpolated inside a chunk; the first chunk includes
        compilation unless an identical fit was compiled before). Also
        ``multipliers`` (``lambda`` of each constraint, tail-averaged like the
        returned tables) and ``states`` (final chain states).

    Raises
    ------
    FloatingPointError
        If a gradient becomes non-finite.
    """
    start = time.perf_counter()
    config = SMMConfig() if config is None else config
    compiled = compile_targets(graph, targets)
    spec = _StepSpec(
        kernel=resolve_kernel(config.kernel),
        n_sweeps=int(config.mcmc_steps_per_iteration),
        optimizer=config.optimizer,
        schedule=config.schedule,
        grad_clip=None if config.grad_clip is None else float(config.grad_clip),
    )
    hyper = _Hyper(
        learning_rate=jnp.float32(config.learning_rate),
        num_iterations=jnp.float32(config.num_iterations),
        l2=jnp.float32(config.l2_regularization),
        param_clip=jnp.float32(
            jnp.inf if config.param_clip is None else config.param_clip
        ),
        average_from=jnp.float32(
            np.floor((1.0 - config.average_fraction) * config.num_iterations)
        ),
    )
    key = jax.random.key(config.seed)
    if initial_states is None:
        buffer = PersistentBuffer.initialize(graph, config.num_chains, key)
        states, key = buffer.states, buffer.rng_keys
    else:
        validate_states(graph, initial_states, "initial_states")
        states = jax.tree.map(jnp.asarray, dict(initial_states))
    params = {
        "theta": flatten_theta(graph.theta_groups),
        "lam": jnp.zeros(compiled.linear.num_features, jnp.float32),
    }
    carry = _Carry(
        params,
        make_optimizer(spec, hyper).init(params),
        states,
        key,
        jnp.float32(0.0),
        params,
    )

    total = int(config.num_iterations)
    chunk = min(int(config.chunk_size), total)
    max_err, mean_err, runtime = [], [], []
    with tqdm(total=total, disable=not config.progress, desc="fit_smm") as bar:
        for first in range(0, total, chunk):
            n_active = min(chunk, total - first)
            active = jnp.arange(chunk) < n_active
            t0 = time.perf_counter()
            carry, (mx, mn, finite) = _train_chunk(
                graph.plan, compiled, carry, active, hyper, spec
            )
            finite = np.asarray(finite[:n_active])
            if not finite.all():
                bad = first + int(np.argmin(finite))
                raise FloatingPointError(
                    f"fit_smm: non-finite gradient at iteration {bad}; lower "
                    "learning_rate, set grad_clip or l2_regularization, or use "
                    "a pseudocount so no target cell is exactly 0"
                )
            t1 = time.perf_counter()
            max_err.extend(np.asarray(mx[:n_active]).tolist())
            mean_err.extend(np.asarray(mn[:n_active]).tolist())
            frac = np.arange(1, n_active + 1) / n_active
            runtime.extend((t0 - start + frac * (t1 - t0)).tolist())
            bar.update(n_active)
            bar.set_postfix(max_error=f"{max_err[-1]:.4f}")
            if callback is not None and callback(first + n_active, carry.states):
                break

    theta = effective_theta(carry.average, compiled)
    history = {
        "iteration": list(range(len(max_err))),
        "max_error": max_err,
        "mean_error": mean_err,
        "runtime": runtime,
        "multipliers": np.asarray(carry.average["lam"]),
        "states": carry.states,
    }
    return graph.with_theta(unflatten_theta(graph.plan, theta)), history
