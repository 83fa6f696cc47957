"""Flow matching posterior estimation over ``Tokens``.

The estimator learns a vector field ``v(x_t, t | context)`` on the target
tokens by conditional flow matching with optimal-transport paths (Lipman et
al. 2023; FMPE, Dax et al. 2023): for data ``x_1``, noise ``x_0 ~ N(0, I)`` and
``t`` from the time prior,

    x_t = (1 - (1 - sigma_min) t) x_0 + t x_1,
    u_t = x_1 - (1 - sigma_min) x_0,

and the loss is ``|v(x_t, t) - u_t|^2`` averaged over the real coordinates of
the target tokens (padded tokens and padded features excluded). Values are
standardized per key with statistics of the training set; samples and
densities are reported in the user's units. Samples solve the ODE from noise
to ``t = 1`` (:mod:`tfmpe.sampling`); ``log_prob`` runs it backwards with the
change of variables.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jaxtyping import Array
from tqdm.auto import tqdm

from tfmpe.estimators.layout import Layout, layout, resolve_keys
from tfmpe.nn.transformer import Transformer, TransformerConfig
from tfmpe.preprocessing.masks import Independence
from tfmpe.preprocessing.tokens import Tokens
from tfmpe.rng import as_rng_key
from tfmpe.sampling import flow_log_prob, integrate_flow
from tfmpe.sampling.ode import RTOL, check_method

SAMPLE_BYTES_LIMIT = 2**30
EXACT_TRACE_LIMIT = 64


def _check_finite(data: Array, padding: Array, name: str) -> None:
    """Raise if a real token of ``data`` holds NaN or inf."""
    bad = int(jnp.sum(~jnp.isfinite(data) & padding[..., None]))
    if bad:
        raise ValueError(f"{name} holds {bad} non-finite values (NaN or inf)")


def key_statistics(tokens: Tokens) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per-key mean and standard deviation of every feature column.

    Over all samples and real tokens of the key; a constant column gets
    standard deviation 1, so it is only centered.
    """
    stats = {}
    data = np.asarray(tokens.data, np.float64)
    padding = np.asarray(tokens.padding_mask)
    for key, offset, event, batch in tokens.records:
        n = math.prod(event)
        values = data[..., offset : offset + n, :].reshape(-1, data.shape[-1])
        real = padding[..., offset : offset + n].reshape(-1)
        values = values[real] if real.any() else np.zeros((1, data.shape[-1]))
        mean, std = values.mean(0), values.std(0)
        width = math.prod(batch)
        mean[width:], std[width:] = 0.0, 1.0
        std = np.where(std > 1e-12, std, 1.0)
        stats[key] = (mean.astype(np.float32), std.astype(np.float32))
    return stats


class FlowMatchingEstimator:
    """Transformer flow-matching posterior estimator.

    Parameters
    ----------
    tokens : Tokens
        Training data (or a representative sample of it): fixes the feature
        widths, the label vocabulary (every key's label) and the per-key
        standardization.
    target_keys : list of str
        Keys whose distribution is learnt (the parameters, for a posterior).
    conditioning_keys : list of str, optional
        Keys conditioned on (default: every other key).
    config : TransformerConfig or dict, optional
    sigma_min : float
        Width of the OT path at ``t = 1``.
    time_prior_exponent : float, optional
        ``alpha >= 0`` of the time prior ``p(t) ~ t^(1 / (1 + alpha))``
        (Dax et al. 2023), which favors late times; ``None`` (default) is
        uniform.
    rng_key : jax.Array or int
        Initializes the network.

    Raises
    ------
    TypeError, ValueError, KeyError
        For keys, configuration or data that cannot be used, naming the
        argument.
    """

    def __init__(
        self,
        tokens: Tokens,
        target_keys: Sequence[str],
        conditioning_keys: Sequence[str] | None = None,
        *,
        config: TransformerConfig | Mapping[str, Any] | None = None,
        sigma_min: float = 1e-3,
        time_prior_exponent: float | None = None,
        rng_key: Array | int = 0,
    ) -> None:
        target, conditioning = resolve_keys(tokens, target_keys, conditioning_keys)
        _check_finite(tokens.data, tokens.padding_mask, "tokens")
        if config is None:
            config = TransformerConfig()
        elif isinstance(config, Mapping):
            config = TransformerConfig.from_dict(dict(config))
        elif not isinstance(config, TransformerConfig):
            raise TypeError(
                f"config must be a TransformerConfig or a dict, got "
                f"{type(config).__name__}"
            )
        if not 0.0 <= float(sigma_min) < 1.0:
            raise ValueError(f"sigma_min must be in [0, 1), got {sigma_min}")
        if time_prior_exponent is not None and not time_prior_exponent >= 0.0:
            raise ValueError(
                f"time_prior_exponent must be None or >= 0, got {time_prior_exponent}"
            )
        functional = tokens.functional_inputs
        self._build(
            value_dim=int(tokens.data.shape[-1]),
            functional_dim=0 if functional is None else int(functional.shape[-1]),
            vocabulary=tuple(sorted(set(tokens.label_map.values()))),
            stats=key_statistics(tokens),
            independence=tokens.independence,
            target_keys=target,
            conditioning_keys=conditioning,
            config=config,
            sigma_min=float(sigma_min),
            time_prior_exponent=(
                None if time_prior_exponent is None else float(time_prior_exponent)
            ),
            rng_key=rng_key,
        )

    def _build(
        self,
        *,
        value_dim: int,
        functional_dim: int,
        vocabulary: tuple[int, ...],
        stats: Mapping[str, tuple[np.ndarray, np.ndarray]],
        independence: Independence,
        target_keys: tuple[str, ...],
        conditioning_keys: tuple[str, ...],
        config: TransformerConfig,
        sigma_min: float,
        time_prior_exponent: float | None,
        rng_key: Array | int,
    ) -> None:
        model = Transformer(
            value_dim,
            functional_dim,
            len(vocabulary),
            config,
            rngs=nnx.Rngs(params=rng_key),
        )
        self.graphdef, self.params = nnx.split(model, nnx.Param)
        self.value_dim, self.functional_dim = value_dim, functional_dim
        self.vocabulary = vocabulary
        self.stats = {
            k: (jnp.asarray(m), jnp.asarray(s)) for k, (m, s) in stats.items()
        }
        self.target_keys, self.conditioning_keys = target_keys, conditioning_keys
        self.config = config
        self.independence = independence
        self.sigma_min, self.time_prior_exponent = sigma_min, time_prior_exponent

    # ----------------------------------------------------------------- helpers
    def _keys(
        self,
        tokens: Tokens,
        target_keys: Sequence[str] | None,
        conditioning_keys: Sequence[str] | None,
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        target = self.target_keys if target_keys is None else target_keys
        if conditioning_keys is None and target_keys is None:
            conditioning_keys = self.conditioning_keys
        target, conditioning = resolve_keys(tokens, target, conditioning_keys)
        unknown = [k for k in (*target, *conditioning) if k not in self.stats]
        if unknown:
            raise KeyError(
                f"keys {unknown} were not in the estimator's training tokens "
                f"(it knows {sorted(self.stats)})"
            )
        if tokens.data.shape[-1] != self.value_dim:
            raise ValueError(
                f"tokens have {tokens.data.shape[-1]} feature columns; the "
                f"estimator was built for {self.value_dim}"
            )
        if tokens.independence != self.independence:
            warnings.warn(
                "these tokens' independence rules differ from the ones the "
                "estimator was trained with, so its attention sees another "
                f"dependency structure (trained: {self.independence}; given: "
                f"{tokens.independence})",
                UserWarning,
                stacklevel=3,
            )
        return target, conditioning

    def _prepared(
        self, tokens: Tokens, target: tuple[str, ...], conditioning: tuple[str, ...]
    ) -> tuple[Layout, Array, Array, Array, Array]:
        """Layout, standardized values, per-token mean and std, real targets.

        ``real`` is ``bool[B, n_target, F]``: the coordinates the flow moves.
        """
        lay = layout(tokens, target, conditioning)
        mean = lay.per_token({k: m for k, (m, _) in self.stats.items()})
        std = lay.per_token({k: s for k, (_, s) in self.stats.items()})
        n_target = lay.n_target
        real = (
            jnp.asarray(lay.feature_mask[:n_target])[None]
            & lay.view.padding_mask[:, :n_target, None]
        )
        return lay, (lay.view.data - mean) / std, mean, std, real

    def velocity_fn(self, params: nnx.State, lay: Layout):
        """``f(t, x_target, context, padding, functional)`` for a batch.

        ``t`` is ``(M,)``, ``x_target`` ``(M, n_target, F)`` in standardized
        units, ``context`` the standardized ``(M, N, F)`` rows of the layout,
        ``padding`` ``(M, N)`` and ``functional`` ``(M, N, F)`` or None; the
        result is ``(M, n_target, F)``. One batched network call.
        """
        model = nnx.merge(self.graphdef, params)
        static = {
            "feature_mask": jnp.asarray(lay.feature_mask),
            "label_index": jnp.asarray(lay.label_index(self.vocabulary)),
            "is_target": jnp.asarray(lay.is_target),
            "self_mask": lay.view.self_attention_mask,
        }
        n_target = lay.n_target

        def velocity(t, x_target, context, padding, functional):
            values = context.at[:, :n_target].set(x_target)
            out = model(
                values,
                t.astype(values.dtype),
                padding_mask=padding,
                functional=functional,
                **static,
            )
            return out[:, :n_target]

        return velocity

    def _compiled(self, kind: str, *static: Any):
        """The jitted sampler or density for these static arguments (cached)."""
        cache = self.__dict__.setdefault("_jit_cache", {})
        if (kind, *static) not in cache:
            build = _sampler if kind == "sample" else _density
            cache[(kind, *static)] = build(self, *static)
        return cache[(kind, *static)]

    # -------------------------------------------------------------------- loss
    def sample_time(self, rng_key: Array, shape: tuple[int, ...]) -> Array:
        """Flow times from the power-law time prior."""
        u = jax.random.uniform(rng_key, shape)
        if self.time_prior_exponent is None:
            return u
        power = 1.0 / (1.0 + self.time_prior_exponent)  # p(t) ~ t^power
        return u ** (1.0 / (1.0 + power))

    def loss(
        self,
        params: nnx.State,
        tokens: Tokens,
        rng_key: Array,
        target_keys: Sequence[str] | None = None,
        conditioning_keys: Sequence[str] | None = None,
    ) -> Array:
        """Conditional flow matching loss of a batch (jittable).

        Parameters
        ----------
        params : nnx.State
            Network parameters (``self.params`` or a candidate).
        tokens : Tokens
            A batch, one leading sample axis.
        rng_key : jax.Array
        target_keys, conditioning_keys : list of str, optional
            Default: the estimator's.

        Returns
        -------
        Array
            Scalar: mean squared velocity error over the real target
            coordinates.
        """
        target, conditioning = self._keys(tokens, target_keys, conditioning_keys)
        lay, values, _, _, real = self._prepared(tokens, target, conditioning)
        n_target = lay.n_target
        padding = lay.view.padding_mask
        x1 = values[:, :n_target]
        noise_rng_key, time_rng_key = jax.random.split(rng_key)
        x0 = jax.random.normal(noise_rng_key, x1.shape, x1.dtype)
        t = self.sample_time(time_rng_key, (x1.shape[0],))[:, None, None]
        xt = (1.0 - (1.0 - self.sigma_min) * t) * x0 + t * x1
        target_velocity = x1 - (1.0 - self.sigma_min) * x0
        velocity = self.velocity_fn(params, lay)(
            t[:, 0, 0], xt, values, padding, lay.view.functional_inputs
        )
        squared = jnp.where(real, (velocity - target_velocity) ** 2, 0.0)
        return jnp.sum(squared) / jnp.maximum(jnp.sum(real), 1)

    # ---------------------------------------------------------------- training
    def fit(self, train: Any, **kwargs: Any) -> Any:
        """Train in place; see :func:`tfmpe.estimators.training.fit`."""
        from tfmpe.estimators.training import fit

        return fit(self, train, **kwargs)

    # ---------------------------------------------------------------- sampling
    def sample(
        self,
        tokens: Tokens,
        target_keys: Sequence[str] | None = None,
        n: int = 1000,
        rng_key: Array | int = 0,
        *,
        conditioning_keys: Sequence[str] | None = None,
        method: str = "dopri5",
        steps: int | None = None,
        tol: float = RTOL,
        chunk_size: int = 512,
        progress: bool = False,
    ) -> dict[str, Array]:
        """Draw ``n`` posterior samples of the target keys given the rest.

        Parameters
        ----------
        tokens : Tokens
            The conditioning values (the observation); the target keys' values
            are placeholders and only fix their shapes. Sample shape ``()`` for
            one observation, or ``(B,)`` for a batch of them.
        target_keys : list of str, optional
            Default: the estimator's.
        n : int
            Samples per observation.
        rng_key : jax.Array or int
        conditioning_keys : list of str, optional
            Default: the estimator's when ``target_keys`` is its own, else
            every other key.
        method : str
            ODE method (see :func:`tfmpe.sampling.integrate_flow`).
        steps : int, optional
            Steps of a fixed-step method.
        tol : float
            Relative and absolute tolerance of an adaptive method.
        chunk_size : int
            Samples solved per compiled call (bounds memory).
        progress : bool
            Show a progress bar over the chunks.

        Returns
        -------
        dict of str to Array
            Per target key, ``(n, *sample_shape, *event, *batch)``.

        Raises
        ------
        ValueError
            For ``n`` or ``chunk_size`` below 1, a request too large to hold,
            or non-finite conditioning values.
        """
        target, conditioning = self._keys(tokens, target_keys, conditioning_keys)
        n = _positive_int(n, "n")
        chunk_size = _positive_int(chunk_size, "chunk_size")
        check_method(method, steps)
        flat = tokens if tokens.sample_shape else _add_sample_axis(tokens)
        lay = layout(flat, target, conditioning)
        n_obs = math.prod(flat.sample_shape)
        needed = n * n_obs * lay.n_target * self.value_dim * 4
        if needed > SAMPLE_BYTES_LIMIT:
            raise ValueError(
                f"n = {n} samples of {n_obs} observation(s) need "
                f"{needed / 2**30:.1f} GiB (limit {SAMPLE_BYTES_LIMIT / 2**30:.0f} "
                "GiB); draw them in several calls"
            )
        n_t = lay.n_target
        _check_finite(
            lay.view.data[..., n_t:, :], lay.view.padding_mask[..., n_t:], "tokens"
        )
        rng_key = as_rng_key(rng_key)
        solve = self._compiled("sample", target, conditioning, method, steps, tol)
        chunks = []
        starts = range(0, n, chunk_size)
        bar = tqdm(starts, desc="sample", unit="chunk", disable=not progress)
        for i, start in enumerate(bar):
            size = min(chunk_size, n - start)
            x0 = jax.random.normal(
                jax.random.fold_in(rng_key, i),
                (size, n_obs, lay.n_target, self.value_dim),
            )
            chunks.append(solve(self.params, flat, x0))
        x1 = jnp.concatenate(chunks)  # (n, n_obs, n_target, F), user units
        x1 = x1.reshape(n, *flat.sample_shape, lay.n_target, self.value_dim)
        samples = flat.select_tokens(list(target)).decode(x1)
        if not tokens.sample_shape:
            samples = {k: v[:, 0] for k, v in samples.items()}
        return samples

    def log_prob(
        self,
        tokens: Tokens,
        target_keys: Sequence[str] | None = None,
        rng_key: Array | int | None = None,
        *,
        conditioning_keys: Sequence[str] | None = None,
        trace: str = "auto",
        method: str = "dopri5",
        steps: int | None = None,
        tol: float = RTOL,
    ) -> Array:
        """Log density of the target keys' values in ``tokens``, given the rest.

        Parameters
        ----------
        tokens : Tokens
            Target values and conditioning values; sample shape ``()`` or
            ``(B,)``.
        target_keys : list of str, optional
        rng_key : jax.Array or int, optional
            Needed by Hutchinson's trace estimator.
        conditioning_keys : list of str, optional
        trace : str
            ``"exact"``, ``"hutchinson"`` or ``"auto"`` (exact up to
            ``EXACT_TRACE_LIMIT`` real target coordinates).
        method, steps, tol
            ODE method, as :meth:`sample`.

        Returns
        -------
        Array
            ``(*sample_shape,)`` log densities in the user's units.
        """
        target, conditioning = self._keys(tokens, target_keys, conditioning_keys)
        if trace not in ("auto", "exact", "hutchinson"):
            raise ValueError(
                f"trace must be 'auto', 'exact' or 'hutchinson', got {trace!r}"
            )
        check_method(method, steps)
        flat = tokens if tokens.sample_shape else _add_sample_axis(tokens)
        lay = layout(flat, target, conditioning)
        _check_finite(lay.view.data, lay.view.padding_mask, "tokens")
        n_real = int(lay.feature_mask[: lay.n_target].sum())
        exact = trace == "exact" or (trace == "auto" and n_real <= EXACT_TRACE_LIMIT)
        if not exact and rng_key is None:
            raise ValueError("rng_key is needed for trace='hutchinson'")
        rng_key = None if exact else as_rng_key(rng_key)
        density = self._compiled(
            "density", target, conditioning, method, steps, tol, exact
        )
        out = density(self.params, flat, rng_key)
        return out if tokens.sample_shape else out[0]

    # --------------------------------------------------------------- save/load
    def save(self, path: Any) -> Any:
        """Write the estimator to one file; see :mod:`tfmpe.estimators.checkpoint`."""
        from tfmpe.estimators.checkpoint import save_estimator

        return save_estimator(self, path)

    @classmethod
    def load(cls, path: Any) -> FlowMatchingEstimator:
        """Read an estimator written by :meth:`save`."""
        from tfmpe.estimators.checkpoint import load_estimator

        return load_estimator(path)


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def _add_sample_axis(tokens: Tokens) -> Tokens:
    return jax.tree.map(lambda leaf: leaf[None], tokens)


def _sampler(est: FlowMatchingEstimator, target, conditioning, method, steps, tol):
    """Jitted ``(params, tokens, x0) -> samples`` in user units."""

    @jax.jit
    def solve(params, tokens, x0):
        lay, values, mean, std, keep = est._prepared(tokens, target, conditioning)
        padding = lay.view.padding_mask
        functional = lay.view.functional_inputs
        n_target = lay.n_target
        velocity = est.velocity_fn(params, lay)
        n, n_obs = x0.shape[:2]

        def tiled(a):  # (B, ...) -> (n * B, ...): every sample of every obs
            return (
                None
                if a is None
                else jnp.broadcast_to(a[None], (n, *a.shape)).reshape(
                    n * n_obs, *a.shape[1:]
                )
            )

        context, pad, func = tiled(values), tiled(padding), tiled(functional)

        def field(t, x):
            flat = x.reshape(n * n_obs, *x.shape[2:])
            times = jnp.full((n * n_obs,), t, flat.dtype)
            return velocity(times, flat, context, pad, func).reshape(x.shape)

        x1 = integrate_flow(
            field, x0 * keep, method=method, steps=steps, rtol=tol, atol=tol
        )
        return (x1 * std[:n_target] + mean[:n_target]) * keep

    return solve


def _density(
    est: FlowMatchingEstimator, target, conditioning, method, steps, tol, exact
):
    """Jitted ``(params, tokens, rng_key) -> log densities`` in user units."""

    @jax.jit
    def density(params, tokens, rng_key):
        lay, values, _, std, real = est._prepared(tokens, target, conditioning)
        padding = lay.view.padding_mask
        functional = lay.view.functional_inputs
        velocity = est.velocity_fn(params, lay)
        n_target = lay.n_target

        def field(t, x, i):
            func = None if functional is None else functional[i][None]
            times = jnp.reshape(t, (1,)).astype(x.dtype)
            return velocity(times, x[None], values[i][None], padding[i][None], func)[0]

        logp = flow_log_prob(
            field,
            values[:, :n_target] * real,
            real,
            rng_key=None if exact else rng_key,
            method=method,
            steps=steps,
            rtol=tol,
            atol=tol,
        )
        log_scale = jnp.where(real, jnp.log(std[:n_target]), 0.0)
        return logp - jnp.sum(log_scale, axis=(1, 2))

    return density
