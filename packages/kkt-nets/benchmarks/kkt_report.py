"""The README blocks of ``bench_kkt.py``, rendered from its results.

:func:`readme_blocks` is what the driver prints and what
``tests/test_benchmarks.py`` finds in the package README, so the README's
numbers are those of ``results/kkt.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

SHORT = {
    "set_cover": "set cover",
    "combinatorial_auction": "auction",
    "facility_location": "facility location",
    "independent_set": "independent set",
}


def _row(label: str, e: dict[str, Any]) -> str:
    """One markdown table row of an evaluation summary."""
    p, r, c, ratio = e["prediction"], e["refined"], e["cold"], e["ratios"]
    pdlp = ratio.get("predict_refine_over_highs_pdlp", float("nan"))
    return (
        f"| {label} | {e['instances']} | {p['objective_gap']['median']:.2%} | "
        f"{p['max_violation']['median']:.3f} | "
        f"{p['row_relative_violation']['median']:.3f} | "
        f"{p['dual_bound_gap']['median']:.2%} | "
        f"{r['optimal']}/{e['instances']} | {r['objective_gap']['max']:.1e} | "
        f"{r['iterations']['median']:.0f} / {c['iterations']['median']:.0f} | "
        f"{ratio['warm_over_cold_iterations_median']:.2f} | "
        f"{ratio['predict_refine_over_highs_simplex']:.2f} | {pdlp:.2f} |"
    )


def markdown(records: Sequence[dict[str, Any]]) -> str:
    """The README table: one row per evaluation (test, then out of distribution)."""
    lines = [
        "| run | LPs | raw gap (median) | raw max violation (median) | raw "
        "row-relative violation (median) | dual-bound gap (median) | refined "
        "optimal | refined gap to HiGHS (max) | PDHG iterations warm / cold "
        "(median) | warm / cold (median ratio) | time / HiGHS simplex | time / "
        "HiGHS PDLP |",
        "|---" * 12 + "|",
    ]
    for record in records:
        lines.append(_row(record["label"], record["test"]))
        for name, summary in record.get("ood", {}).items():
            lines.append(_row(f"{record['label']}, {name}", summary))
    return "\n".join(lines)


def ablation_markdown(records: Sequence[dict[str, Any]]) -> str:
    """The ablation table: raw accuracy, training cost and embedding spread."""
    lines = [
        "| configuration | optimizer steps | train s | raw gap (median) | raw max "
        "violation (median) | dual-bound gap (median) | JEPA embedding std "
        "(isotropic) |",
        "|---" * 7 + "|",
    ]
    for record in records:
        p, spread = record["test"]["prediction"], record["test"]["embedding"]
        lines.append(
            f"| {record['label']} | {record['train']['steps']} | "
            f"{record['train']['train_seconds']:.0f} | "
            f"{p['objective_gap']['median']:.2%} | "
            f"{p['max_violation']['median']:.3f} | "
            f"{p['dual_bound_gap']['median']:.2%} | {spread['mean_std']:.3f} "
            f"({spread['reference_isotropic']:.3f}) |"
        )
    return "\n".join(lines)


def short_exp(value: float, digits: int = 1) -> str:
    """``2.2e-4`` rather than ``2.2e-04`` (``digits`` after the point)."""
    mantissa, exponent = f"{value:.{digits}e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def goals_markdown(results: dict[str, Any]) -> str:
    """The goals table: one column per family, each cell met or **no** (value)."""
    families = results["families"]
    checks = {(g["run"], g["goal"]): g for g in results["goals"]}

    def cell(label: str, goal: str, shown: str) -> str:
        return f"{'yes' if checks[label, goal]['met'] else '**no**'} ({shown})"

    def violation(record: dict[str, Any]) -> str:
        p = record["test"]["prediction"]
        shown = f"{p['max_violation']['median']:.3f}"
        if not checks[record["label"], "raw violation median <= 0.05"]["met"]:
            relative = p["row_relative_violation"]["median"]
            shown += f"; {relative:.3f} relative to the row's scale"
        return cell(record["label"], "raw violation median <= 0.05", shown)

    def speed(ratio: float) -> str:
        return f"{ratio:.1f}x slower" if ratio >= 1 else f"{1 / ratio:.1f}x faster"

    strict_tol = families[0]["test_strict"]["tol"]
    strict_goal = f"refined within 1e-4 of HiGHS (at tol {strict_tol:g})"
    rows = {
        "raw gap median <= 5 %": lambda r: cell(
            r["label"],
            "raw gap median <= 5%",
            f"{100 * r['test']['prediction']['objective_gap']['median']:.2f} %",
        ),
        "raw max violation median <= 0.05": violation,
        "warm / cold PDHG iterations <= 1/3": lambda r: cell(
            r["label"],
            "warm/cold iterations <= 1/3",
            f"{r['test']['ratios']['warm_over_cold_iterations_median']:.2f}",
        ),
        "refined within 1e-4 of HiGHS, tolerance 1e-4": lambda r: cell(
            r["label"],
            "refined within 1e-4 of HiGHS (at tol 1e-4)",
            short_exp(r["test"]["refined"]["objective_gap"]["max"]),
        ),
        f"refined within 1e-4 of HiGHS, tolerance {short_exp(strict_tol, 0)}": (
            lambda r: cell(
                r["label"],
                strict_goal,
                short_exp(r["test_strict"]["refined"]["objective_gap"]["max"]),
            )
        ),
        "predict + refine vs HiGHS simplex, one by one (CPU)": lambda r: speed(
            r["test"]["ratios"]["predict_refine_over_highs_simplex"]
        ),
    }
    batch = results["batch"]
    lines = [
        "| goal | " + " | ".join(SHORT[r["label"]] for r in families) + " |",
        "|---" * (len(families) + 1) + "|",
    ]
    for name, render in rows.items():
        cells = [render(r) for r in families]
        if name.startswith("predict + refine") and families[-1]["label"] == (
            "independent_set"
        ):
            ratio = batch["ratios"]["predict_refine_over_highs_simplex"]
            cells[-1] += f" ({ratio:.1f}x for {batch['instances']:,} in one batch)"
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def strict_sentence(families: Sequence[dict[str, Any]]) -> str:
    """The refinement at the strict tolerance, in one sentence."""
    strict = [r["test_strict"] for r in families]
    optimal = all(s["refined"]["optimal"] == s["instances"] for s in strict)
    gaps = [
        f"{short_exp(s['refined']['objective_gap']['max'])} ({SHORT[r['label']]})"
        for r, s in zip(families, strict, strict=True)
    ]
    iterations = [f"{s['refined']['iterations']['median']:.0f}" for s in strict]
    return (
        f"Refinement at tolerance {short_exp(strict[0]['tol'], 0)} (the same test "
        f"LPs): {'every LP `optimal`' if optimal else 'not every LP optimal'}, "
        f"refined objective within {', '.join(gaps[:-1])} and {gaps[-1]} of "
        f"HiGHS's, relative; medians of {', '.join(iterations[:-1])} and "
        f"{iterations[-1]} PDHG iterations."
    )


def readme_blocks(results: dict[str, Any]) -> list[str]:
    """Every block of the README's benchmark section, in order."""
    batch = {"label": "independent_set, one batch", "test": results["batch"]}
    return [
        markdown(results["families"]),
        markdown([batch]),
        strict_sentence(results["families"]),
        markdown([results["mlp"]]),
        ablation_markdown(results["losses"] + results["jepa"]),
        goals_markdown(results),
    ]
