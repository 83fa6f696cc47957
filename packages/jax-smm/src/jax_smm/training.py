"""Stochastic moment matching: fit theta so that model moments equal targets.

Each iteration runs ``mcmc_steps_per_iteration`` sweeps of the persistent chains,
averages the factor-cell counts over *every* sweep and chain (the model moments),
and takes an optimizer step along ``target - model`` (the gradient of the
log-likelihood of the maximum-entropy family), minus an L2 penalty. The jitted
step takes the parameters as arguments, so one compilation serves the whole fit;
iterations run inside ``lax.scan`` chunks and a tqdm bar follows the chunks.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from tqdm.auto import tqdm

from jax_smm.compile import Plan, flatten_theta, unflatten_theta
from jax_smm.config import SMMConfig, as_config
from jax_smm.diagnostics import unmatched_targets
from jax_smm.features import (
    State,
    add_linear_terms,
    estimate_moments,
    linear_expectations,
    validate_states,
)
from jax_smm.graph import FactorGraph
from jax_smm.mcmc.buffer import PersistentBuffer, resolve_kernel
from jax_smm.mcmc.hybrid import HybridGibbs
from jax_smm.targets import (
    CompiledTargets,
    Targets,
    compile_targets,
)

FINAL_LR_FRACTION = 0.01


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
    """The optax optimizer of a step: schedule, optional clipping, SGD or Adam.

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
    rng_key: jax.Array
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
    """One SMM iteration: sample, estimate moments, take an optimizer step."""
    params, opt_state, states, rng_key, iteration, average = carry
    rng_key, sample_rng_key = jax.random.split(rng_key)
    theta_ext = jnp.append(effective_theta(params, targets), 0.0)
    states, counts, _ = spec.kernel.step(
        plan, theta_ext, states, sample_rng_key, spec.n_sweeps
    )
    model = counts / (spec.n_sweeps * states["cat"].shape[0])
    residual = (targets.values - model) * targets.mask
    lin_residual = targets.linear_values - linear_expectations(model, targets.linear)
    # optax minimizes: the loss gradient is -(target - model) + l2 * param.
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
    carry = _Carry(params, opt_state, states, rng_key, iteration + 1.0, average)
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


class FitHistory(NamedTuple):
    """What :func:`fit_smm` records, as NumPy arrays (one entry per iteration).

    ``history.max_error`` and ``history["max_error"]`` are the same array.

    Attributes
    ----------
    iteration : int64[T]
        Iteration numbers ``0 .. T-1`` (``T`` < ``num_iterations`` when a
        callback stopped the fit).
    max_error, mean_error : float64[T]
        Largest and mean absolute moment error (targeted cells and linear
        constraints) of each iteration's Monte Carlo estimate.
    runtime : float64[T]
        Cumulative wall seconds since the call of :func:`fit_smm` at the end of
        each iteration: measured at the end of each jitted chunk and
        interpolated linearly inside it (the first chunk includes compilation
        unless an identical fit was compiled before).
    multipliers : float32[m]
        ``lambda`` of each linear constraint, tail-averaged like the returned
        tables (already folded into them).
    final_states : dict
        The persistent chains at the end, ``{"cat": int32[C, n_cat], "cont":
        float32[C, n_cont]}`` (NumPy): a warm start for another fit
        (``initial_states``) or for :class:`~jax_smm.model.MaxEntModel`.
    config : SMMConfig
        The settings of the fit.
    """

    iteration: np.ndarray
    max_error: np.ndarray
    mean_error: np.ndarray
    runtime: np.ndarray
    multipliers: np.ndarray
    final_states: State
    config: SMMConfig

    def __getitem__(self, key: int | slice | str) -> Any:
        """A field by name (``history["max_error"]``) or a tuple position."""
        if isinstance(key, str):
            if key not in self._fields:
                raise KeyError(
                    f"FitHistory has no field {key!r}; fields: {self._fields}"
                )
            return getattr(self, key)
        return tuple.__getitem__(self, key)


def fit_smm(
    graph: FactorGraph,
    targets: Targets,
    config: SMMConfig | Mapping[str, Any] | None = None,
    initial_states: State | None = None,
    callback: Callable[[int, State], bool | None] | None = None,
) -> tuple[FactorGraph, FitHistory]:
    """Fit the graph's factor tables so that model moments match ``targets``.

    Parameters
    ----------
    graph : FactorGraph
        The model; its current theta is the starting point. Factors without a
        target keep their theta.
    targets : Targets
        From :func:`build_targets_from_marginals` or
        :func:`build_targets_from_samples`, for this graph.
    config : SMMConfig or dict, optional
        Settings (defaults if omitted); a dict is checked like
        :meth:`SMMConfig.from_dict` (unknown keys are named in the error).
    initial_states : dict, optional
        Chain states to start from (e.g. ``history.final_states`` of an earlier
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
    history : FitHistory
        Per-iteration errors and runtime, the multipliers, the final chain
        states and the config.

    Raises
    ------
    ValueError
        For a bad config, targets built for another graph, bad initial states,
        or chains that cannot fit in memory.
    FloatingPointError
        If a gradient becomes non-finite.

    Warns
    -----
    RuntimeWarning
        When the final chains miss some target by far more than their sampling
        noise (see :func:`~jax_smm.diagnostics.unmatched_targets`): the targets
        are inconsistent, or the fit needs more iterations.
    """
    start = time.perf_counter()
    config = as_config(config)
    if not isinstance(graph, FactorGraph):
        raise ValueError(f"graph must be a FactorGraph, got {type(graph).__name__}")
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
    rng_key = jax.random.key(config.seed)
    if initial_states is None:
        buffer = PersistentBuffer.initialize(graph, config.num_chains, rng_key)
        states, rng_key = buffer.states, buffer.rng_keys
    else:
        validate_states(graph, initial_states, "initial_states")
        states = {k: jnp.asarray(v) for k, v in initial_states.items()}
        states.setdefault("cont", jnp.zeros((states["cat"].shape[0], 0), jnp.float32))
    params = {
        "theta": flatten_theta(graph.theta_groups),
        "lam": jnp.zeros(compiled.linear.num_features, jnp.float32),
    }
    carry = _Carry(
        params,
        make_optimizer(spec, hyper).init(params),
        states,
        rng_key,
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

    final_states = {k: np.asarray(v) for k, v in carry.states.items()}
    _warn_if_unmatched(graph, targets, final_states)
    theta = effective_theta(carry.average, compiled)
    history = FitHistory(
        iteration=np.arange(len(max_err)),
        max_error=np.asarray(max_err, np.float64),
        mean_error=np.asarray(mean_err, np.float64),
        runtime=np.asarray(runtime, np.float64),
        multipliers=np.asarray(carry.average["lam"]),
        final_states=final_states,
        config=config,
    )
    return graph.with_theta(unflatten_theta(graph.plan, theta)), history


def _warn_if_unmatched(graph: FactorGraph, targets: Targets, states: State) -> None:
    """Warn when the final chains miss targets by far more than sampling noise."""
    num_chains = states["cat"].shape[0]
    misses = unmatched_targets(
        graph, targets, estimate_moments(graph, states), num_chains
    )
    if misses:
        shown = "; ".join(text for _, text in misses[:5])
        warnings.warn(
            f"fit_smm: the fit ends with {len(misses)} target(s) missed by far "
            f"more than the sampling noise of its {num_chains} chains. Worst: "
            f"{shown}. The targets may be inconsistent (no distribution matches "
            "them all), or the fit needs more iterations or a larger learning "
            "rate.",
            RuntimeWarning,
            stacklevel=3,
        )
