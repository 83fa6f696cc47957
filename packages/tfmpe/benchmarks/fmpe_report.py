"""Scores, goals, README tables and the figure of ``bench_fmpe.py``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from harness import log

from tfmpe.plotting import pyplot, save_figure

C2ST_GOAL, GENERALIZATION_GOAL, OVERHEAD_GOAL = 0.55, 0.60, 1.1


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


def goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The benchmark's goals: value and whether met."""
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
            GENERALIZATION_GOAL,
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
            f"{r['factorized']['mean']:.3f} | {r['factorized_min_ess']:.0f} | "
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


def plot(results: dict[str, Any], path: Path) -> None:
    """C2ST against budget (ours, flowjax) and against K (joint, factorized)."""
    fig, (left, right) = pyplot().subplots(1, 2, figsize=(10, 4))
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
    right.axhline(GENERALIZATION_GOAL, ls="--", color="tab:red", label="goal at K = 20")
    right.set_xlabel("groups K at inference")
    right.set_ylabel("C2ST")
    right.set_title("conditioning on more groups than trained on")
    right.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
