"""Integrate a flow-matching vector field with diffrax.

:func:`integrate_flow` carries noise at ``t = 0`` to a sample at ``t = 1``
under ``velocity(t, x)``; a whole batch is one ODE state, so one adaptive step
size serves the batch (no batched control flow). :func:`flow_log_prob` takes a
per-sample ``velocity`` and a batch of points at ``t = 1`` and runs the flow
backwards with the instantaneous change of variables,
``d log p_t(x_t) / dt = -div v(x_t, t)``, so that
``log p_1(x_1) = log N(x_0; 0, I) - int_0^1 div v dt``. The divergence is the
exact trace of the Jacobian (``jax.jacfwd``) or Hutchinson's estimator
``E[eps^T J eps]`` with Rademacher ``eps`` (one ``jax.jvp`` per evaluation).
Coordinates outside ``real`` (padding) hold still and carry no density.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import diffrax
import jax
import jax.numpy as jnp
from jaxtyping import Array

Velocity = Callable[[Array, Array], Array]
METHODS = ("dopri5", "tsit5", "heun", "euler")
RTOL = ATOL = 1e-4


def check_method(method: str, steps: int | None) -> None:
    """Validate an ODE method name and its step count.

    Raises
    ------
    ValueError
        For an unknown ``method``, or ``steps`` that is not a positive int
        where a fixed-step method needs one.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    fixed = method in ("heun", "euler")
    if fixed and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ValueError(
            f"steps must be a positive int for the fixed-step method "
            f"{method!r}, got {steps!r}"
        )


def _solve(
    velocity: Callable[[Array, object], object],
    y0: object,
    t0: float,
    t1: float,
    method: str,
    steps: int | None,
    rtol: float,
    atol: float,
) -> object:
    solvers = {
        "dopri5": diffrax.Dopri5,
        "tsit5": diffrax.Tsit5,
        "heun": diffrax.Heun,
        "euler": diffrax.Euler,
    }
    adaptive = method in ("dopri5", "tsit5")
    controller = (
        diffrax.PIDController(rtol=rtol, atol=atol)
        if adaptive
        else diffrax.ConstantStepSize()
    )
    dt0 = None if adaptive else (t1 - t0) / steps
    solution = diffrax.diffeqsolve(
        diffrax.ODETerm(lambda t, y, args: velocity(t, y)),
        solvers[method](),
        t0=t0,
        t1=t1,
        dt0=dt0,
        y0=y0,
        stepsize_controller=controller,
        max_steps=4096,
        saveat=diffrax.SaveAt(t1=True),
    )
    return jax.tree.map(lambda leaf: leaf[-1], solution.ys)


def integrate_flow(
    velocity: Velocity,
    x0: Array,
    *,
    method: str = "dopri5",
    steps: int | None = None,
    rtol: float = RTOL,
    atol: float = ATOL,
) -> Array:
    """Carry ``x0`` from ``t = 0`` to ``t = 1``.

    Parameters
    ----------
    velocity : callable
        ``velocity(t, x) -> dx/dt``.
    x0 : Array
        The starting point (noise).
    method : str
        ``"dopri5"`` (adaptive, default), ``"tsit5"``, or the fixed-step
        ``"heun"`` / ``"euler"``.
    steps : int, optional
        Steps of a fixed-step method.
    rtol, atol : float
        Tolerances of an adaptive method.

    Returns
    -------
    Array
        The point at ``t = 1``.
    """
    check_method(method, steps)
    return _solve(velocity, x0, 0.0, 1.0, method, steps, rtol, atol)


def _divergence(
    velocity: Velocity, t: Array, x: Array, real: Array, eps: Array | None
) -> tuple[Array, Array]:
    """``(v, div v)`` at ``(t, x)``; exact when ``eps`` is None."""
    if eps is None:
        flat = x.reshape(-1)

        def flat_velocity(z):
            return velocity(t, z.reshape(x.shape)).reshape(-1)

        jacobian = jax.jacfwd(flat_velocity)(flat)
        v = flat_velocity(flat).reshape(x.shape)
        return v, jnp.sum(jnp.diagonal(jacobian) * real.reshape(-1))
    v, jvp = jax.jvp(lambda z: velocity(t, z), (x,), (eps,))
    return v, jnp.sum(eps * jvp)


def flow_log_prob(
    velocity: Velocity,
    x1: Array,
    real: Array,
    *,
    rng_key: Array | None = None,
    method: str = "dopri5",
    steps: int | None = None,
    rtol: float = RTOL,
    atol: float = ATOL,
) -> Array:
    """``log p_1(x1)`` of the flow, over the coordinates where ``real``.

    Parameters
    ----------
    velocity : callable
        ``velocity(t, x, i) -> dx/dt`` of sample ``i`` of the batch; zero where
        ``real`` is False.
    x1 : Array
        ``(B, ...)``: a batch of points at ``t = 1``.
    real : Array
        ``bool``, shaped like ``x1``: coordinates that carry density.
    rng_key : jax.Array, optional
        Key of Hutchinson's estimator; ``None`` takes the exact trace.
    method, steps, rtol, atol
        As :func:`integrate_flow`.

    Returns
    -------
    Array
        ``(B,)`` log densities.
    """
    check_method(method, steps)
    real_f = real.astype(x1.dtype)
    eps = None
    if rng_key is not None:
        eps = jax.random.rademacher(rng_key, x1.shape, x1.dtype) * real_f
    index = jnp.arange(x1.shape[0])

    def augmented(t, state):
        x, _ = state

        def one(x_i, real_i, eps_i, i):
            return _divergence(lambda s, z: velocity(s, z, i), t, x_i, real_i, eps_i)

        return jax.vmap(one, in_axes=(0, 0, None if eps is None else 0, 0))(
            x, real_f, eps, index
        )

    zeros = jnp.zeros(x1.shape[:1], x1.dtype)
    x0, integral = _solve(augmented, (x1, zeros), 1.0, 0.0, method, steps, rtol, atol)
    axes = tuple(range(1, x1.ndim))
    n_real = jnp.sum(real_f, axis=axes)
    base = -0.5 * jnp.sum(real_f * x0**2, axis=axes) - 0.5 * n_real * math.log(
        2 * math.pi
    )
    return base + integral
