"""Bottom-up posteriors: train on one group, condition on any number of groups.

For a hierarchical model with global parameters ``g`` (e.g. ``mu``), local
parameters ``l_i`` and data ``y_i`` of group ``i``, with ``l_i`` and ``y_i``
independent across groups given ``g``, the posterior factorizes as

    p(g, l_1..K | y_1..K) = p(g | y_1..K) prod_i p(l_i | g, y_i),
    p(g | y_1..K) ~ p(g)^(1 - K) prod_i p(g | y_i).

Both factors on the right are single-group posteriors, so two estimators
trained on single-group simulations suffice for every ``K``:

* ``global_estimator``: targets ``g``, conditioned on one group's data;
* ``local_estimator``: targets ``l``, conditioned on ``g`` and that group's data.

Sampling draws ``g`` by sampling-importance-resampling: a Gaussian proposal
from the product of Gaussian fits of the factors (widened), weights from the
flows' exact log densities (:meth:`FlowMatchingEstimator.log_prob`) and the
prior's, and a resampling step whose effective sample size is reported and
checked. Then each group's ``l_i`` is drawn given its resampled ``g``, all
groups in one batch (the ``with_values`` path of the spec). The prior of ``g``
enters ``1 - K`` times: a user gives its log density.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from tfmpe.estimators.flow_matching import FlowMatchingEstimator
from tfmpe.estimators.layout import check_keys
from tfmpe.preprocessing.tokens import Tokens
from tfmpe.rng import as_rng_key


@dataclass(frozen=True)
class FactorizedSample:
    """Joint posterior samples and the diagnostics of their importance step.

    Attributes
    ----------
    samples : dict of str to Array
        Global keys ``(n, *event, *batch)``; local keys ``(n, K, *event, *batch)``.
    effective_sample_size : float
        Kish ESS of the importance weights of the global draw.
    n_proposals : int
    """

    samples: dict[str, Array]
    effective_sample_size: float
    n_proposals: int


class FactorizedPosterior:
    """Posterior over any number of groups from two single-group estimators.

    Parameters
    ----------
    global_estimator : FlowMatchingEstimator
        ``q(g | y_i)``: targets the global keys given one group's data keys.
    local_estimator : FlowMatchingEstimator
        ``q(l_i | g, y_i)``: targets the local keys given the global and data
        keys of one group.
    global_prior_log_prob : callable
        ``f(values) -> (n,)``: the prior log density of the global keys, given
        a dict of global leaves ``(n, *event, *batch)``.
    global_keys, local_keys, data_keys : list of str
    global_independence, local_independence : dict, optional
        The independence rules of the single-group tokens each estimator was
        trained with. They differ in general: with the local keys integrated
        out, the global keys depend on the data directly (a rule such as
        ``cross: [("mu", "obs")]`` of the joint model would hide the data from
        ``mu`` and leave the global estimator with its prior).

    Raises
    ------
    ValueError
        If the estimators' keys do not match the roles.
    """

    def __init__(
        self,
        global_estimator: FlowMatchingEstimator,
        local_estimator: FlowMatchingEstimator,
        global_prior_log_prob: Callable[[dict[str, Array]], Array],
        global_keys: Sequence[str],
        local_keys: Sequence[str],
        data_keys: Sequence[str],
        global_independence: Any = None,
        local_independence: Any = None,
    ) -> None:
        self.global_keys = check_keys(global_keys, "global_keys")
        self.local_keys = check_keys(local_keys, "local_keys")
        self.data_keys = check_keys(data_keys, "data_keys")
        if tuple(global_estimator.target_keys) != self.global_keys:
            raise ValueError(
                f"global_estimator targets {list(global_estimator.target_keys)}, "
                f"not global_keys {list(self.global_keys)}"
            )
        if tuple(local_estimator.target_keys) != self.local_keys:
            raise ValueError(
                f"local_estimator targets {list(local_estimator.target_keys)}, "
                f"not local_keys {list(self.local_keys)}"
            )
        self.global_estimator, self.local_estimator = global_estimator, local_estimator
        self.global_prior_log_prob = global_prior_log_prob
        self.global_independence = global_independence
        self.local_independence = local_independence

    def _group_tokens(
        self, observation: Tokens, globals_: dict[str, Array], independence: Any
    ) -> Tokens:
        """Single-group tokens: every (global sample, group) pair."""
        data = observation.decode()
        n_groups = data[self.data_keys[0]].shape[0]
        n = next(iter(globals_.values())).shape[0]
        leaves = {}
        for key in self.global_keys:
            value = globals_[key]
            leaves[key] = jnp.repeat(value, n_groups, axis=0)
        for key in self.local_keys:
            placeholder = data[key][:1]  # one group's shape
            leaves[key] = jnp.zeros((n * n_groups, *placeholder.shape), jnp.float32)
        for key in self.data_keys:
            groups = data[key][:, None]  # (K, 1, ...): one group each
            leaves[key] = jnp.tile(groups, (n,) + (1,) * (groups.ndim - 1))
        return Tokens.from_pytree(leaves, independence, label_map=observation.label_map)

    def sample(
        self,
        observation: Tokens,
        n: int,
        rng_key: Array | int = 0,
        *,
        n_proposals: int | None = None,
        widen: float = 1.5,
        min_ess: float = 0.1,
    ) -> FactorizedSample:
        """Joint posterior samples given ``K`` groups.

        Parameters
        ----------
        observation : Tokens
            One observation (sample shape ``()``) with the global and local
            keys as placeholders and the data keys with ``K`` groups on their
            first event axis.
        n : int
            Samples to return.
        rng_key : jax.Array or int
        n_proposals : int, optional
            Importance proposals (default ``2 n``); each costs ``K`` flow
            densities.
        widen : float
            Standard deviation factor of the Gaussian proposal.
        min_ess : float
            Smallest acceptable effective sample size, as a fraction of ``n``;
            below it a warning says the global draw is unreliable.

        Returns
        -------
        FactorizedSample
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        if observation.sample_shape:
            raise ValueError(
                f"observation must hold one observation (sample shape ()), got "
                f"{observation.sample_shape}"
            )
        n_proposals = 2 * n if n_proposals is None else n_proposals
        factor_rng_key, proposal_rng_key, resample_rng_key, local_rng_key = (
            jax.random.split(as_rng_key(rng_key), 4)
        )
        data = observation.decode()
        n_groups = int(data[self.data_keys[0]].shape[0])
        spec = self.global_independence

        # 1. Gaussian fit of each factor q(g | y_i), then of their product
        template = {k: data[k] for k in self.global_keys}
        placeholder = {k: v[None] for k, v in template.items()}
        group_tokens = self._group_tokens(observation, placeholder, spec)
        draws = self.global_estimator.sample(
            group_tokens, n=256, rng_key=factor_rng_key
        )
        flat = jnp.concatenate(
            [draws[k].reshape(256, n_groups, -1) for k in self.global_keys], axis=-1
        )  # (256, K, d)
        factor_mean = np.asarray(flat.mean(0), np.float64)
        factor_var = np.asarray(flat.var(0), np.float64) + 1e-12
        prior_mean, prior_var = self._prior_moments(observation)
        precision = (1.0 / factor_var).sum(0) - (n_groups - 1) / prior_var
        precision = np.maximum(precision, (1.0 / factor_var).max(0))
        mean = (
            (factor_mean / factor_var).sum(0) - (n_groups - 1) * prior_mean / prior_var
        ) / precision
        sd = widen / np.sqrt(precision)

        # 2. importance weights of proposals with the flows' exact densities
        z = np.asarray(jax.random.normal(proposal_rng_key, (n_proposals, mean.size)))
        proposals = mean + sd * z
        log_proposal = (-0.5 * z**2 - np.log(sd) - 0.5 * math.log(2 * math.pi)).sum(1)
        values = self._unflatten(jnp.asarray(proposals, jnp.float32), template)
        tokens = self._group_tokens(observation, values, spec)
        log_q = np.asarray(self.global_estimator.log_prob(tokens), np.float64)
        log_q = log_q.reshape(n_proposals, n_groups).sum(1)
        log_prior = np.asarray(self.global_prior_log_prob(values), np.float64)
        log_w = log_q + (1 - n_groups) * log_prior - log_proposal
        if not np.isfinite(log_w).any():
            raise FloatingPointError("every importance weight is zero or NaN")
        log_w = np.where(np.isfinite(log_w), log_w, -np.inf)
        w = np.exp(log_w - log_w.max())
        w /= w.sum()
        ess = float(1.0 / np.sum(w**2))
        if ess < min_ess * n:
            warnings.warn(
                f"importance sampling of the global keys kept an effective sample "
                f"size of {ess:.0f} for n = {n}; raise n_proposals or widen",
                RuntimeWarning,
                stacklevel=2,
            )
        index = np.asarray(jax.random.choice(resample_rng_key, n_proposals, (n,), p=w))
        chosen = {k: v[index] for k, v in values.items()}

        # 3. each group's local keys given its global sample
        local_tokens = self._group_tokens(observation, chosen, self.local_independence)
        local = self.local_estimator.sample(local_tokens, n=1, rng_key=local_rng_key)
        samples = dict(chosen)
        for key in self.local_keys:
            value = local[key][0]  # (n * K, 1, ...)
            samples[key] = value.reshape(n, n_groups, *value.shape[2:])
        return FactorizedSample(samples, ess, n_proposals)

    def _prior_moments(self, observation: Tokens) -> tuple[np.ndarray, np.ndarray]:
        """Prior mean and variance of every global value.

        The global estimator's per-key statistics are those of its training
        set, simulated from the prior.
        """
        means, variances = [], []
        for key in self.global_keys:
            mean, std = self.global_estimator.stats[key]
            layout = observation.slices[key]
            width = math.prod(layout["batch_shape"])
            tokens = math.prod(layout["event_shape"])
            means.append(np.tile(np.asarray(mean[:width], np.float64), tokens))
            variances.append(np.tile(np.asarray(std[:width], np.float64) ** 2, tokens))
        return np.concatenate(means), np.concatenate(variances)

    def _unflatten(self, flat: Array, template: dict[str, Array]) -> dict[str, Array]:
        out, start = {}, 0
        for key in self.global_keys:
            shape = template[key].shape
            size = math.prod(shape)
            out[key] = flat[:, start : start + size].reshape(flat.shape[0], *shape)
            start += size
        return out
