"""The benchmark numbers of the package README, rendered from the results JSON.

Each benchmark owns one block of ``packages/jax-smm/README.md`` between
``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->``; a full run rewrites its
block from the JSON it has just written, so the README never carries a number
the JSON does not. Run this file to re-render both blocks from the JSON files
already in ``results/`` (``--check`` only compares, exit 1 if stale).

Usage::

    python packages/jax-smm/benchmarks/readme_blocks.py [--check]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from jax_smm.persistence import atomic_write

BENCH_DIR = Path(__file__).resolve().parent
README = BENCH_DIR.parent / "README.md"
RESULTS = BENCH_DIR / "results"

# Lattice-specialized JAX samplers timed by the project on the same machine class
# (M updates/s; not measured by these scripts).
LATTICE_JAX_CEILING = {2: 546.0, 8: 136.0}
SAMPLER_GOAL_OVER_THRML = 10.0
FIT_GOAL_SECONDS = 45.0
FIT_GOAL_LEVEL = "0.9"


def markers(name: str) -> tuple[str, str]:
    """Opening and closing marker of block ``name``."""
    return f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"


def replace_block(text: str, name: str, body: str) -> str:
    """``text`` with the lines between the markers of ``name`` set to ``body``.

    Raises
    ------
    ValueError
        If the markers are missing, repeated or out of order.
    """
    opening, closing = markers(name)
    if text.count(opening) != 1 or text.count(closing) != 1:
        raise ValueError(f"README must hold exactly one {opening} ... {closing}")
    if text.index(closing) < text.index(opening):
        raise ValueError(f"{closing} comes before {opening}")
    head, rest = text.split(opening)
    _, tail = rest.split(closing)
    return f"{head}{opening}\n{body.strip()}\n{closing}{tail}"


def update_readme(name: str, body: str, readme: Path = README) -> bool:
    """Rewrite block ``name`` of ``readme`` (atomically); whether it changed."""
    text = readme.read_text(encoding="utf-8")
    new = replace_block(text, name, body)
    if new == text:
        return False
    atomic_write(readme, lambda tmp: tmp.write_text(new, encoding="utf-8"))
    return True


def _mark(met: bool) -> str:
    return "**met**" if met else "**not met**"


def _load(run: dict[str, Any]) -> str:
    """The 1-minute load averages before and after a run, as text."""
    before = run["load_average"]["before"]
    after = run["load_average"]["after"]
    if not before:
        return "load average not recorded"
    text = f"1-minute load average {before[0]:.2f} before"
    return text + (f", {after[0]:.2f} after" if after else "")


def render_sampler(payload: dict[str, Any]) -> str:
    """The sampler block: the rates table and the goals, from the JSON."""
    run = payload["run"]
    machine, versions = run["machine"], run["versions"]
    rate = {(r["implementation"], r["k"]): r for r in payload["results"] if "k" in r}
    ks = sorted({k for _, k in rate})
    thrml = versions.get("thrml") or "?"
    lines = [
        f"Run of {run['timestamp']} (commit "
        f"`{(run['git']['commit'] or '?')[:9]}`) on "
        f"{machine['cpu_model']} ({machine['cpu_count']} CPUs), jax "
        f"{versions['jax']}; {_load(run)}. "
        f"{payload['config']['chains']} chains, "
        f"{payload['config']['sweeps_per_call']} sweeps per call, median of "
        f"{payload['config']['repeats']} calls.",
        "",
        "| K | jax_smm chromatic | + cell counts | NumPy floor | "
        f"thrml {thrml} | ours / NumPy | ours / thrml | our compile |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def cell(name: str, k: int, bold: bool = False) -> str:
        record = rate.get((name, k))
        if record is None:
            return "-"
        text = f"{record['rate_m_updates_per_s']:.1f}"
        return f"**{text}** M/s" if bold else f"{text} M/s"

    for k in ks:
        ratio = payload["ratios"].get(str(k), {})
        ours = rate.get(("ours", k), {})
        compile_s = ours.get("compile_s")
        lines.append(
            f"| {k} | {cell('ours', k, True)} | {cell('ours_counts', k)} | "
            f"{cell('numpy', k)} | {cell('thrml', k)} | "
            + " | ".join(
                f"{ratio[key]:.2f}x" if key in ratio else "-"
                for key in ("ours_over_numpy", "ours_over_thrml")
            )
            + f" | {'-' if compile_s is None else f'{compile_s:.2f} s'} |"
        )
    goals = []
    for k in ks:
        over = payload["ratios"].get(str(k), {}).get("ours_over_thrml")
        if over is None:
            continue
        text = f"K = {k}: {_mark(over >= SAMPLER_GOAL_OVER_THRML)} ({over:.1f}x thrml"
        if over < SAMPLER_GOAL_OVER_THRML and k in LATTICE_JAX_CEILING:
            needed = SAMPLER_GOAL_OVER_THRML * rate["thrml", k]["rate_m_updates_per_s"]
            text += (
                f"; 10x would be {needed:.0f} M/s, against "
                f"{LATTICE_JAX_CEILING[k]:.0f} M/s for a lattice-specialized "
                "JAX sampler timed by the project on the same machine class, not "
                "in this run"
            )
        goals.append(text + ")")
    if goals:
        lines += [
            "",
            f"Goal, sampler >= {SAMPLER_GOAL_OVER_THRML:g}x thrml in "
            "the same run: " + "; ".join(goals) + ".",
        ]
    return "\n".join(lines)


def render_fit(payload: dict[str, Any]) -> str:
    """The RF00379 block: times to the Pearson thresholds and the goal."""
    settings = payload["settings"]
    timing = payload["timing"]
    peer = payload["peer_reference"]["thresholds"]
    final = payload["final"]
    lines = [
        f"Run of {payload['run']['timestamp']}: {settings['chains']:,} chains, "
        f"{settings['sweeps']} sweeps per iteration, {settings['optimizer'].upper()}"
        f" lr {settings['learning_rate']:g} ({settings['schedule']}), Pearson "
        f"every {settings['chunk_size']} iterations; {_load(payload['run'])}.",
        "",
        "| | jax_smm (this run) | adabmDCA 1.0.0 (timed by the project on the "
        "same machine class, not in this run) |",
        "|---|---:|---:|",
    ]
    for level, hit in payload["thresholds"].items():
        peer_hit = peer.get(level)
        if hit is None and peer_hit is None:
            continue
        ours = (
            "not reached"
            if hit is None
            else f"**{hit['seconds']:.1f} s** ({hit['iterations']:,} iterations)"
        )
        theirs = "-"
        if peer_hit is not None:
            theirs = f"{peer_hit['seconds']:g} s"
            if peer_hit.get("iterations"):
                theirs += f" ({peer_hit['iterations']:,} updates)"
        lines.append(f"| Pearson {level} | {ours} | {theirs} |")
    per_iteration = timing["seconds_per_iteration"]
    peer_09 = peer[FIT_GOAL_LEVEL]
    lines.append(
        f"| seconds per iteration | {per_iteration:.4f} | "
        f"{peer_09['seconds'] / peer_09['iterations']:.2f} |"
        if per_iteration is not None
        else "| seconds per iteration | - | - |"
    )
    lines.append(
        f"| final | {final['pearson']:.3f} after {final['iterations']:,} "
        f"iterations, {final['seconds']:.1f} s ({final['stop_reason']}) | |"
    )
    ceiling = payload["snapshot_noise_ceiling"]["median"]
    overhead = timing["first_chunk_overhead_seconds"]
    lines += [
        "",
        "Times run from the call of `fit_smm`: setup, compilation (about "
        f"{overhead:.1f} s by the first chunk's excess over a typical one) and the "
        f"Pearson callbacks ({timing['callback_seconds_median']:.3f} s each) "
        f"included. Noise ceiling of the estimator: {settings['chains']:,} "
        f"sequences resampled from the data score {ceiling:.3f}."
        if overhead is not None
        else "Times run from the call of `fit_smm`, compilation included.",
    ]
    hit = payload["thresholds"].get(FIT_GOAL_LEVEL)
    if hit is None:
        verdict = f"{_mark(False)} ({FIT_GOAL_LEVEL} not reached)"
    else:
        verdict = (
            f"{_mark(hit['seconds'] <= FIT_GOAL_SECONDS)} ({hit['seconds']:.1f} s; "
            f"the adabmDCA figure is {peer_09['seconds'] / hit['seconds']:.1f}x "
            "longer)"
        )
    lines += [
        "",
        f"Goal, Pearson {FIT_GOAL_LEVEL} in <= {FIT_GOAL_SECONDS:g} s: {verdict}.",
    ]
    return "\n".join(lines)


BLOCKS: dict[str, tuple[str, Callable[[dict[str, Any]], str]]] = {
    "sampler": ("sampler_throughput.json", render_sampler),
    "fit_rf00379": ("fit_rf00379.json", render_fit),
}


def refresh(name: str, payload: dict[str, Any]) -> None:
    """Rewrite block ``name`` of the README from a benchmark's fresh results."""
    _, render = BLOCKS[name]
    if update_readme(name, render(payload)):
        print(f"rewrote the bench:{name} block of {README}")


def main(argv: Sequence[str] | None = None) -> int:
    """Re-render (or ``--check``) every block from the results in ``results/``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="compare only")
    args = parser.parse_args(argv)
    text = README.read_text(encoding="utf-8")
    new = text
    for name, (filename, render) in BLOCKS.items():
        payload = json.loads((RESULTS / filename).read_text(encoding="utf-8"))
        new = replace_block(new, name, render(payload))
    if args.check:
        if new != text:
            print(f"{README} is stale; run {Path(__file__).name}")
            return 1
        return 0
    if new != text:
        atomic_write(README, lambda tmp: tmp.write_text(new, encoding="utf-8"))
        print(f"rewrote the benchmark blocks of {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
