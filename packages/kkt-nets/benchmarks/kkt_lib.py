"""Building blocks of ``bench_kkt.py``: datasets, one training run, tables, figure.

Every number comes from the package itself: datasets from ``kkt-generate``
(:func:`kkt_nets.data.generate_instances.main`), training from
:func:`kkt_nets.train.train`, and the comparison with HiGHS (dual simplex and
its PDLP) and with cold-start PDHG from :func:`kkt_nets.evaluate.evaluate`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from harness import log

from kkt_nets.data.generate_instances import main as generate
from kkt_nets.evaluate import evaluate
from kkt_nets.metrics import read_curve
from kkt_nets.plots import save_figure
from kkt_nets.train import parse_config, train

GAP_GOAL, VIOLATION_GOAL, ITERATION_GOAL = 0.05, 0.05, 1 / 3


def make_dataset(
    root: Path, family: str, params: dict[str, str], counts: Sequence[int], seed: int
) -> Path:
    """A ``kkt-generate`` dataset (train, val, test counts) under ``root``."""
    flags = [f"--{key.replace('_', '-')}={value}" for key, value in params.items()]
    generate(
        [
            *("--family", family, *flags, "--seed", str(seed)),
            *("--n-train", str(counts[0]), "--n-val", str(counts[1])),
            *("--n-test", str(counts[2]), "--out", str(root), "--quiet"),
        ]
    )
    return root


def run(
    label: str,
    data: Path,
    flags: Sequence[str],
    work: Path,
    check_every: int,
    ood: dict[str, Path] | None = None,
    strict_tol: float | None = None,
) -> dict[str, Any]:
    """Train one configuration on ``data`` and evaluate it (and on ``ood``).

    Parameters
    ----------
    label : str
    data : Path
        Dataset of ``kkt-generate`` (trained on train/val, evaluated on test).
    flags : sequence of str
        ``kkt-train`` flags.
    work : Path
        Runs go to ``work/runs/<label>``.
    check_every : int
        PDHG iterations between checks.
    ood : dict of str to Path, optional
        Out-of-distribution test sets by description.
    strict_tol : float, optional
        Also refine the test set at this tolerance (``test_strict``).

    Returns
    -------
    dict
        ``label``, ``flags``, ``train`` (epochs, steps, seconds, final
        penalty), ``curve`` (per epoch), and summaries of
        :func:`kkt_nets.evaluate.evaluate`: ``test``, ``ood`` (by
        description) and ``test_strict``.
    """
    out = work / "runs" / re.sub(r"[^a-z0-9]+", "_", label.lower())
    paths = ["--data-dir", str(data), "--out-dir", str(out)]
    config = parse_config([*paths, "--overwrite", "--quiet", *flags])
    log(f"training {label} ({' '.join(flags)})")
    done = train(config).to_dict()
    record: dict[str, Any] = {
        "label": label,
        "flags": list(flags),
        "train": {
            key: done[key]
            for key in ("epochs_run", "steps", "train_seconds", "penalty")
        },
        "curve": read_curve(out),
    }
    checkpoint = out / "best.pt"
    log(f"evaluating {label}")
    record["test"] = evaluate(checkpoint, data, check_every=check_every).to_dict()
    if ood:
        record["ood"] = {
            name: evaluate(checkpoint, where, check_every=check_every).to_dict()
            for name, where in ood.items()
        }
    if strict_tol is not None:
        record["test_strict"] = evaluate(
            checkpoint, data, tol=strict_tol, check_every=check_every, highs_pdlp=False
        ).to_dict()
    return record


def goals(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each goal per in-distribution family run: value and whether met."""
    checks = []
    for record in records:
        e = record["test"]
        values = {
            "raw gap median <= 5%": e["prediction"]["objective_gap"]["median"],
            "raw violation median <= 0.05": e["prediction"]["max_violation"]["median"],
            "warm/cold iterations <= 1/3": e["ratios"][
                "warm_over_cold_iterations_median"
            ],
            "refined within 1e-4 of HiGHS (at tol 1e-4)": e["refined"]["objective_gap"][
                "max"
            ],
        }
        if "test_strict" in record:
            strict = record["test_strict"]
            values[f"refined within 1e-4 of HiGHS (at tol {strict['tol']:g})"] = strict[
                "refined"
            ]["objective_gap"]["max"]
        limits = (GAP_GOAL, VIOLATION_GOAL, ITERATION_GOAL, 1e-4, 1e-4)
        for (goal, value), limit in zip(values.items(), limits):
            checks.append(
                {"run": record["label"], "goal": goal, "value": value,
                 "met": bool(value <= limit)}
            )  # fmt: skip
    return checks


def plot(results: dict[str, Any], path: Path) -> None:
    """Raw gap and violation per run, PDHG iterations, and the ablations."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = results["families"]
    fig, axes = plt.subplots(2, 2, figsize=(14, 9))
    names = [r["label"] for r in families]
    y = np.arange(len(names))
    panels = (
        (axes[0, 0], "objective_gap", GAP_GOAL, "objective gap"),
        (axes[0, 1], "max_violation", VIOLATION_GOAL, "max violation"),
    )
    for ax, key, goal, title in panels:
        for shift, split, color in ((-0.2, "test", "tab:blue"), (0.2, "ood", "tab:orange")):  # fmt: skip  # noqa: E501
            values = [
                (r[split] if split == "test" else next(iter(r[split].values())))[
                    "prediction"
                ][key]["median"]
                for r in families
            ]
            label = "test" if split == "test" else "2-4x larger (first set)"
            ax.barh(y + shift, values, height=0.4, color=color, label=label)
        ax.set_xscale("symlog", linthresh=1e-3)
        ax.axvline(goal, color="tab:red", ls="--", label=f"goal {goal:g}")
        ax.set_yticks(y, names, fontsize=8)
        ax.set_title(f"raw prediction: {title} (median)", fontsize=9)
        ax.legend(fontsize=8)
    ax = axes[1, 0]
    for shift, run_name, color in ((-0.2, "refined", "tab:green"), (0.2, "cold", "tab:gray")):  # fmt: skip  # noqa: E501
        values = [r["test"][run_name]["iterations"]["median"] for r in families]
        ax.barh(y + shift, values, height=0.4, color=color, label=f"{run_name} PDHG")
    ax.set_yticks(y, names, fontsize=8)
    ax.set_title("PDHG iterations to 1e-4 (median, test)", fontsize=9)
    ax.legend(fontsize=8)
    ax = axes[1, 1]
    for group, marker in (("losses", "o"), ("jepa", "s")):
        for r in results.get(group, []):
            p = r["test"]["prediction"]
            x, v = p["objective_gap"]["median"], p["max_violation"]["median"]
            ax.scatter(x, v, marker=marker)
            ax.annotate(r["label"], (x, v), fontsize=7)
    ax.axvline(GAP_GOAL, color="tab:red", ls="--")
    ax.axhline(VIOLATION_GOAL, color="tab:red", ls="--")
    ax.set_xlabel("raw gap (median)")
    ax.set_ylabel("raw max violation (median)")
    ax.set_title("ablations (loss: circles, JEPA: squares)", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
