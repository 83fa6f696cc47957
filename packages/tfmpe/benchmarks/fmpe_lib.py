"""Datasets, training runs, samplers and speed measurements of ``bench_fmpe.py``."""

from __future__ import annotations

import math
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from harness import time_calls
from peers import flowjax_npe, hand_packed
from scipy.stats import norm

from tfmpe import Tokens, generate_static_dataset
from tfmpe.estimators import FlowMatchingEstimator
from tfmpe.estimators.factorized import FactorizedPosterior
from tfmpe.estimators.layout import layout
from tfmpe.metrics import c2st
from tfmpe.models.hierarchical_gaussian import (
    INDEPENDENCE,
    HierarchicalGaussian,
    flatten_samples,
)

GLOBAL_SPEC: dict = {}  # q(mu | one group's obs): dense attention
STEP_REPEATS, STEP_MIN_REPEAT_S = 7, 0.1  # the jitted-step comparison


def simulate(model: HierarchicalGaussian, n: int, seed: int) -> Tokens:
    """``n`` joint draws of the model as ``Tokens``."""
    return generate_static_dataset(
        seed, model.prior, model.simulate, None, INDEPENDENCE, n
    )


def flat_pairs(tokens: Tokens) -> tuple[np.ndarray, np.ndarray]:
    """``(theta, obs)`` flattened per sample, for the flat-vector peer."""
    tree = tokens.decode()
    n = tree["mu"].shape[0]
    theta = np.asarray(flatten_samples(tree))
    return theta, np.asarray(tree["obs"]).reshape(n, -1)


def train_ours(
    train: Tokens,
    val: Tokens,
    targets: list[str],
    conditioning: list[str] | None,
    steps: int,
    config: dict[str, int],
    seed: int,
    batch_size: int = 128,
) -> tuple[FlowMatchingEstimator, dict[str, Any]]:
    """Fit an estimator for about ``steps`` optimizer steps (early stopping)."""
    est = FlowMatchingEstimator(
        train, targets, conditioning, config=config, rng_key=seed
    )
    per_epoch = max(1, train.sample_shape[0] // batch_size)
    epochs = max(5, math.ceil(steps / per_epoch))
    tic = time.perf_counter()
    history = est.fit(
        train,
        val=val,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=1e-3,
        patience=20,
        progress=False,
        rng_key=seed,
    )
    info = {
        "train_seconds": time.perf_counter() - tic,
        "epochs": len(history.train_loss),
        "steps": len(history.train_loss) * per_epoch,
        "best_val_loss": float(np.nanmin(history.val_loss)),
    }
    return est, info


def truths(model: HierarchicalGaussian, count: int, seed: int) -> list[dict]:
    """Held-out ground truths and their observations."""
    return [model.observation(jax.random.key(seed + i)) for i in range(count)]


def exact_samples(model: HierarchicalGaussian, truth: dict, n: int, seed: int):
    """``(n, 1 + K)`` exact posterior draws."""
    return model.posterior_samples(np.asarray(truth["obs"]), n, seed)


def sample_ours(est: FlowMatchingEstimator, truth: dict, n: int, seed: int):
    """``(n, 1 + K)`` estimator draws given one observation."""
    tokens = Tokens.from_pytree(truth, INDEPENDENCE, sample_ndims=0)
    return np.asarray(flatten_samples(est.sample(tokens, n=n, rng_key=seed)))


def scores(sampler, model, observed: list[dict], n: int) -> list[float]:
    """C2ST of ``sampler(truth, n, seed)`` against exact draws, per observation."""
    out = []
    for i, truth in enumerate(observed):
        ours = sampler(truth, n, i)
        exact = exact_samples(model, truth, n, 1000 + i)
        out.append(c2st(ours, exact, seed=i, n_jobs=2))
    return out


def train_peer(train: Tokens, epochs: int, seed: int) -> flowjax_npe.FlowjaxNPE:
    """The flowjax MAF on the same simulations (train + validation)."""
    theta, obs = flat_pairs(train)
    return flowjax_npe.train(theta, obs, jax.random.key(seed), max_epochs=epochs)


def peer_sampler(peer: flowjax_npe.FlowjaxNPE):
    """``sampler(truth, n, seed)`` of the flat peer."""

    def sample(truth, n, seed):
        obs = np.asarray(truth["obs"]).reshape(-1)
        return peer.sample(obs, n, jax.random.key(seed))

    return sample


def train_factorized(budget: int, steps: int, config, seed: int):
    """Two single-group estimators from ``budget`` single-group simulations.

    The global one sees the data through dense attention (``theta`` is
    integrated out, so the joint model's cut between ``mu`` and ``obs`` does
    not hold); the local one uses the joint model's rules.
    """
    single = HierarchicalGaussian(n_groups=1)
    n_train = int(0.9 * budget)

    def data(spec):
        return (
            generate_static_dataset(
                seed, single.prior, single.simulate, None, spec, n_train
            ),
            generate_static_dataset(
                seed + 1, single.prior, single.simulate, None, spec, budget - n_train
            ),
        )

    global_est, g_info = train_ours(
        *data(GLOBAL_SPEC), ["mu"], ["obs"], steps, config, seed
    )
    local_est, l_info = train_ours(
        *data(INDEPENDENCE), ["theta"], ["mu", "obs"], steps, config, seed + 7
    )
    posterior = FactorizedPosterior(
        global_est,
        local_est,
        lambda values: norm.logpdf(np.asarray(values["mu"]).reshape(-1)),
        ["mu"],
        ["theta"],
        ["obs"],
        global_independence=GLOBAL_SPEC,
        local_independence=INDEPENDENCE,
    )
    info = {
        "train_seconds": g_info["train_seconds"] + l_info["train_seconds"],
        "steps": g_info["steps"] + l_info["steps"],
    }
    return posterior, info


def factorized_sampler(posterior: FactorizedPosterior, ess: list[float]):
    """``sampler(truth, n, seed)`` of the factorized posterior (records ESS).

    ``n`` importance proposals (each costs ``K`` flow densities) keep the
    K = 20 runs affordable on CPU; the recorded ESS shows what that costs.
    """

    def sample(truth, n, seed):
        tokens = Tokens.from_pytree(truth, INDEPENDENCE, sample_ndims=0)
        draw = posterior.sample(tokens, n=n, rng_key=seed, n_proposals=n)
        ess.append(draw.effective_sample_size)
        samples = {k: v.reshape(n, -1) for k, v in draw.samples.items()}
        return np.asarray(flatten_samples(samples))

    return sample


def step_overhead(est: FlowMatchingEstimator, batch: Tokens) -> dict[str, float]:
    """Seconds per jitted value-and-grad step: Tokens path vs hand-packed arrays."""
    lay = layout(batch, est.target_keys, est.conditioning_keys)
    _, values, _, _, _ = est._prepared(batch, est.target_keys, est.conditioning_keys)
    arrays = {
        "n_target": lay.n_target,
        "feature_mask": jnp.asarray(lay.feature_mask),
        "label_index": jnp.asarray(lay.label_index(est.vocabulary)),
        "is_target": jnp.asarray(lay.is_target),
        "self_mask": lay.view.self_attention_mask,
    }
    rng_key = jax.random.key(0)
    tokens_step = jax.jit(jax.value_and_grad(est.loss))
    packed_step = jax.jit(jax.value_and_grad(hand_packed.packed_loss(est, arrays)))
    padding = lay.view.padding_mask
    same = np.allclose(
        float(tokens_step(est.params, batch, rng_key)[0]),
        float(packed_step(est.params, values, padding, rng_key)[0]),
        rtol=1e-5,
    )
    times = time_calls(
        {
            "tokens": lambda: tokens_step(est.params, batch, rng_key),
            "packed": lambda: packed_step(est.params, values, padding, rng_key),
        },
        repeats=STEP_REPEATS,
        min_repeat_s=STEP_MIN_REPEAT_S,
    )
    ours, packed = times["tokens"]["median_s"], times["packed"]["median_s"]
    return {
        "tokens_s": ours,
        "packed_s": packed,
        "ratio": ours / packed,
        "same_loss": bool(same),
        "timing": f"median of {STEP_REPEATS} interleaved repeats (harness.time_calls)",
    }


def sampling_speed(sample, n: int) -> float:
    """Posterior samples per second of ``sample(n)`` (compiled first)."""
    sample(n)
    tic = time.perf_counter()
    sample(n)
    return n / (time.perf_counter() - tic)


def first(tokens: Tokens, n: int) -> Tokens:
    """The first ``n`` samples."""
    return jax.tree.map(lambda leaf: leaf[:n], tokens)
