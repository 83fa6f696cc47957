"""Datasets, runs, scores, tables and figures of ``bench_fmpe.py``."""

from __future__ import annotations

import math
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from harness import log, seconds_per_call
from peers import flowjax_npe
from scipy.stats import norm

from tfmpe import Tokens, combine_tokens, generate_static_dataset
from tfmpe.estimators import FlowMatchingEstimator
from tfmpe.estimators.factorized import FactorisedPosterior
from tfmpe.estimators.layout import layout
from tfmpe.metrics import c2st
from tfmpe.models.hierarchical_gaussian import (
    INDEPENDENCE,
    HierarchicalGaussian,
    flatten_samples,
)

C2ST_GOAL, GENERALISATION_GOAL, OVERHEAD_GOAL = 0.55, 0.60, 1.1
GLOBAL_SPEC: dict = {}  # q(mu | one group's obs): dense attention


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


def train_factorised(budget: int, steps: int, config, seed: int):
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
    posterior = FactorisedPosterior(
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


def factorised_sampler(posterior: FactorisedPosterior, ess: list[float]):
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


def packed_loss(est: FlowMatchingEstimator, arrays: dict[str, Any]):
    """The flow matching loss from hand-packed arrays (the Tokens-free baseline).

    ``arrays``: standardized ``values (B, N, F)`` with the targets first,
    ``padding (B, N)`` and the static ``feature_mask``, ``label_index``,
    ``is_target``, ``self_mask`` and ``n_target``: what a user without
    ``Tokens`` would assemble by hand.
    """
    n_target = arrays["n_target"]
    const = {
        k: arrays[k] for k in ("feature_mask", "label_index", "is_target", "self_mask")
    }

    def loss(params, values, padding, rng_key):
        model = nnx.merge(est.graphdef, params)
        real = const["feature_mask"][None, :n_target] & padding[:, :n_target, None]
        x1 = values[:, :n_target]
        k_noise, k_time = jax.random.split(rng_key)
        x0 = jax.random.normal(k_noise, x1.shape)
        t = jax.random.uniform(k_time, (x1.shape[0],))[:, None, None]
        xt = (1 - (1 - est.sigma_min) * t) * x0 + t * x1
        u = x1 - (1 - est.sigma_min) * x0
        v = model(
            values.at[:, :n_target].set(xt), t[:, 0, 0], padding_mask=padding, **const
        )[:, :n_target]
        return jnp.sum(jnp.where(real, (v - u) ** 2, 0.0)) / jnp.maximum(
            jnp.sum(real), 1
        )

    return loss


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
    key = jax.random.key(0)
    tokens_step = jax.jit(jax.value_and_grad(est.loss))
    packed_step = jax.jit(jax.value_and_grad(packed_loss(est, arrays)))
    padding = lay.view.padding_mask
    same = np.allclose(
        float(tokens_step(est.params, batch, key)[0]),
        float(packed_step(est.params, values, padding, key)[0]),
        rtol=1e-5,
    )
    ours = seconds_per_call(lambda: tokens_step(est.params, batch, key))
    packed = seconds_per_call(lambda: packed_step(est.params, values, padding, key))
    return {
        "tokens_s": ours,
        "packed_s": packed,
        "ratio": ours / packed,
        "same_loss": bool(same),
    }


def sampling_speed(sample, n: int) -> float:
    """Posterior samples per second of ``sample(n)`` (compiled first)."""
    sample(n)
    tic = time.perf_counter()
    sample(n)
    return n / (time.perf_counter() - tic)


def summary(values: list[float]) -> dict[str, float]:
    """Mean, min and max of a list of scores."""
    return {
        "mean": float(np.mean(values)),
        "min": float(np.min(values)),
        "max": float(np.max(values)),
        "values": [float(v) for v in values],
    }


def log_run(label: str, info: dict[str, Any], score: dict[str, float]) -> None:
    """One progress line."""
    log(
        f"{label}: C2ST {score['mean']:.3f} ({info.get('steps', 0)} steps, "
        f"{info.get('train_seconds', 0):.0f} s)"
    )


def combine(a: Tokens, b: Tokens) -> Tokens:
    """Samples of ``a`` then ``b`` (same layout)."""
    return combine_tokens(a, b)


def first(tokens: Tokens, n: int) -> Tokens:
    """The first ``n`` samples."""
    return jax.tree.map(lambda leaf: leaf[:n], tokens)


def goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's goals: value and whether met."""
    at_1e4 = next((r for r in results["budgets"] if r["budget"] == 10_000), None)
    k20 = next(r for r in results["generalization"] if r["groups"] == 20)
    best_k20 = min(k20["joint_trained_at_5"]["mean"], k20["factorized"]["mean"])
    ratio = results["speed"]["step"]["ratio"]
    checks = [
        (
            "C2ST <= 0.55 at 1e4 simulations, K = 5",
            None if at_1e4 is None else at_1e4["ours"]["mean"],
            C2ST_GOAL,
        ),
        (
            "C2ST <= 0.60 at K = 20 (trained on K = 5 or single groups)",
            best_k20,
            GENERALISATION_GOAL,
        ),
        ("Tokens step / hand-packed step <= 1.1", ratio, OVERHEAD_GOAL),
    ]
    return [
        {"goal": g, "value": v, "met": None if v is None else bool(v <= lim)}
        for g, v, lim in checks
    ]


def markdown(results: dict[str, Any]) -> str:
    """The README tables."""
    lines = [
        "| simulations | ours C2ST (mean, min-max) | flowjax MAF C2ST | "
        "ours: steps, train s | flowjax: steps, train s |",
        "|---" * 5 + "|",
    ]
    for r in results["budgets"]:
        o, f = r["ours"], r["flowjax"]
        lines.append(
            f"| {r['budget']:,} | {o['mean']:.3f} ({o['min']:.3f}-{o['max']:.3f}) | "
            f"{f['mean']:.3f} ({f['min']:.3f}-{f['max']:.3f}) | "
            f"{r['ours_fit']['steps']}, {r['ours_fit']['train_seconds']:.0f} | "
            f"{r['flowjax_fit']['steps']}, {r['flowjax_fit']['train_seconds']:.0f} |"
        )
    lines += [
        "",
        "| groups K | joint estimator trained at K = 5 | factorized "
        "(single-group training) | min ESS | flowjax MAF |",
        "|---" * 5 + "|",
    ]
    for r in results["generalization"]:
        lines.append(
            f"| {r['groups']} | {r['joint_trained_at_5']['mean']:.3f} | "
            f"{r['factorized']['mean']:.3f} | {r['factorised_min_ess']:.0f} | "
            "cannot run (fixed input size) |"
        )
    s = results["speed"]
    lines += [
        "",
        "| speed (CPU) | ours | flowjax MAF |",
        "|---|---:|---:|",
        f"| whole fit, steps / s | {s['ours_fit_steps_per_s']:.1f} | "
        f"{s['flowjax_fit_steps_per_s']:.1f} |",
        f"| posterior samples / s | {s['ours_samples_per_s']:.0f} | "
        f"{s['flowjax_samples_per_s']:.0f} |",
        f"| jitted step via Tokens / hand-packed arrays | "
        f"{s['step']['tokens_s'] * 1e3:.1f} ms / {s['step']['packed_s'] * 1e3:.1f} ms"
        f" = {s['step']['ratio']:.2f}x | |",
    ]
    return "\n".join(lines)


def plot(results: dict[str, Any], path) -> None:
    """C2ST against budget (ours, flowjax) and against K (joint, factorized)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tfmpe.io import write_atomically

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    budgets = [r["budget"] for r in results["budgets"]]
    for name, color in (("ours", "tab:blue"), ("flowjax", "tab:orange")):
        means = [r[name]["mean"] for r in results["budgets"]]
        lows = [r[name]["mean"] - r[name]["min"] for r in results["budgets"]]
        highs = [r[name]["max"] - r[name]["mean"] for r in results["budgets"]]
        label = "tfmpe flow matching" if name == "ours" else "flowjax MAF (NPE)"
        left.errorbar(
            budgets,
            means,
            yerr=[lows, highs],
            marker="o",
            capsize=3,
            color=color,
            label=label,
        )
    left.axhline(C2ST_GOAL, ls="--", color="tab:red", label="goal at 1e4")
    left.set_xscale("log")
    left.set_xlabel("simulations")
    left.set_ylabel("C2ST vs exact posterior (0.5 best)")
    left.set_title("hierarchical Gaussian, K = 5")
    left.legend(fontsize=8)
    groups = [r["groups"] for r in results["generalization"]]
    for key, label, color in (
        ("joint_trained_at_5", "joint, trained at K = 5", "tab:blue"),
        ("factorized", "factorized, single-group training", "tab:green"),
    ):
        right.plot(
            groups,
            [r[key]["mean"] for r in results["generalization"]],
            marker="o",
            color=color,
            label=label,
        )
    right.axhline(GENERALISATION_GOAL, ls="--", color="tab:red", label="goal at K = 20")
    right.set_xlabel("groups K at inference")
    right.set_ylabel("C2ST")
    right.set_title("conditioning on more groups than trained on")
    right.legend(fontsize=8)
    fig.tight_layout()
    write_atomically(path, lambda p: fig.savefig(p, dpi=110, format="png"))
    plt.close(fig)
