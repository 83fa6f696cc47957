"""Tables and figure of ``bench_tokens.py``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness import format_time
from tokens_lib import DECODE_RATIO_GOAL, OPERATIONS, TRACE_GOAL, TRACE_INSTANCES

from tfmpe.plotting import pyplot, save_figure


def format_table(records: Sequence[dict[str, Any]]) -> str:
    """Plain-text table: one row per operation or metric, one column per N."""
    label_width = 36
    columns = [f"N = {r['n_tokens']}" for r in records]
    header = f"{'median per call':<{label_width}}" + "".join(
        f"{c:>14}" for c in columns
    )
    lines = [header, "-" * len(header)]
    for key, label in OPERATIONS:
        cells = [format_time(r["times"][key]["median_s"]) for r in records]
        lines.append(f"{label:<{label_width}}" + "".join(f"{c:>14}" for c in cells))
    rows: list[tuple[str, list[str]]] = [
        (
            f"decode ours/peer (goal <= {DECODE_RATIO_GOAL})",
            [f"{r['decode_ratio_ours_over_peer']:.2f}x" for r in records],
        ),
        (
            "decode first call, ours / peer",
            [
                f"{r['times']['decode_ours']['first_call_s'] * 1e3:.0f}/"
                f"{r['times']['decode_peer']['first_call_s'] * 1e3:.0f} ms"
                for r in records
            ],
        ),
        ("mask bytes", [f"{r['mask_bytes']:,}" for r in records]),
        ("N^2 (goal: mask bytes <= N^2)", [f"{r['n_tokens'] ** 2:,}" for r in records]),
        (
            f"traces over {TRACE_INSTANCES} equal Tokens (goal 1)",
            [str(r["traces"]) for r in records],
        ),
    ]
    lines.append("-" * len(header))
    for label, cells in rows:
        lines.append(f"{label:<{label_width}}" + "".join(f"{c:>14}" for c in cells))
    return "\n".join(lines)


def readme_table(records: Sequence[dict[str, Any]]) -> str:
    """The README's markdown table (without its bold), one column per N.

    ``test/test_benchmarks.py`` finds it in the package README for the stored
    results.
    """

    def ms(key: str, record: dict[str, Any]) -> str:
        value = record["times"][key]["median_s"] * 1e3
        return f"{value:.3f}" if value < 1 else f"{value:.2f}"

    def n_squared(record: dict[str, Any]) -> str:
        n2 = record["n_tokens"] ** 2
        return f"{record['mask_bytes']:,}" + (
            " (= N^2)" if record["mask_bytes"] == n2 else ""
        )

    rows = [
        ("`Tokens.from_pytree`", lambda r: f"{ms('from_pytree', r)} ms"),
        (
            "self-attention mask build (cache cleared)",
            lambda r: f"{ms('mask_build', r)} ms",
        ),
        ("`decode` (jit)", lambda r: f"{ms('decode_ours', r)} ms"),
        ("`ravel_pytree` unravel (jit, vmap)", lambda r: f"{ms('decode_peer', r)} ms"),
        (
            f"decode ours / peer (goal <= {DECODE_RATIO_GOAL}x)",
            lambda r: f"{r['decode_ratio_ours_over_peer']:.2f}x",
        ),
        ("`with_values(theta=...)` (jit)", lambda r: f"{ms('with_values_jit', r)} ms"),
        (
            '`select_tokens(["theta", "obs"]).data` (jit / eager)',
            lambda r: f"{ms('select_jit', r)} / {ms('select_eager', r)} ms",
        ),
        ("mask bytes (goal <= N^2)", n_squared),
        (
            f"traces over {TRACE_INSTANCES} fresh equal `Tokens` (goal {TRACE_GOAL})",
            lambda r: str(r["traces"]),
        ),
    ]
    lines = [
        "| median per call | "
        + " | ".join(f"N = {r['n_tokens']}" for r in records)
        + " |",
        "|---" + "|---:" * len(records) + "|",
    ]
    for label, cell in rows:
        lines.append(f"| {label} | " + " | ".join(cell(r) for r in records) + " |")
    return "\n".join(lines)


def plot(records: Sequence[dict[str, Any]], title: str, path: Path) -> None:
    """Times against ``N``: decode ours vs peer (left), the other operations."""
    plt = pyplot()
    ns = [r["n_tokens"] for r in records]
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(11.0, 4.5), layout="constrained", sharey=True
    )
    for key, label, marker in (
        ("decode_ours", "Tokens.decode (jit)", "o"),
        ("decode_peer", "ravel_pytree unravel (jit, vmap)", "s"),
    ):
        values = [r["times"][key]["median_s"] * 1e3 for r in records]
        left.plot(ns, values, marker=marker, label=label)
    for r in records:
        left.annotate(
            f"{r['decode_ratio_ours_over_peer']:.2f}x",
            (r["n_tokens"], r["times"]["decode_ours"]["median_s"] * 1e3),
            textcoords="offset points",
            xytext=(4, 6),
            fontsize=8,
        )
    left.set_title("decode: ours vs ravel_pytree (ratio ours/peer)", fontsize=10)
    for key, label in OPERATIONS:
        if key.startswith("decode"):
            continue
        values = [r["times"][key]["median_s"] * 1e3 for r in records]
        right.plot(ns, values, marker="o", label=label)
    right.set_title("other Tokens operations", fontsize=10)
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(ns, [str(n) for n in ns])
        ax.minorticks_off()
        ax.set_xlabel(f"tokens N ({records[0]['samples']:,} samples)")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8)
    left.set_ylabel("median ms per call")
    fig.suptitle(title, fontsize=10)
    save_figure(fig, path)
