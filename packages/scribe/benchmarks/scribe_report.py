"""Table and figure of ``bench_scribe.py``'s record.

Both take its ``likelihood``, ``svi_step`` and ``vae_epoch`` parts and its
``goals`` (the goal values).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness import format_rows
from peers.scipy_nb import PLAUSIBLE_LOG_PROB


def ms(seconds: float, decimals: int = 2) -> str:
    """Seconds as milliseconds with ``decimals`` decimals."""
    return f"{seconds * 1e3:.{decimals}f} ms"


def format_table(
    ll: dict[str, Any], svi: dict[str, Any], vae: dict[str, Any], goals: dict[str, Any]
) -> str:
    """Plain-text summary of the three parts (``goals``: the record's goals)."""
    speedup_goal, relative_goal, ratio_goal = (
        goals[k]
        for k in (
            "likelihood_speedup_min",
            "likelihood_relative_difference_max",
            "svi_ratio_max",
        )
    )
    t, s = ll["times"], svi["times"]
    diff = ll["relative_difference_scribe_vs_numpyro"]
    large = ll["large_counts"]
    rows = [
        ("1. NB log-lik value+grad, scribe", ms(t["scribe"]["median_s"])),
        ("   numpyro NegativeBinomialProbs", ms(t["numpyro"]["median_s"])),
        (
            f"   speedup numpyro/scribe (goal >= {speedup_goal:g})",
            f"{ll['speedup_numpyro_over_scribe']:.2f}x",
        ),
        (
            f"   rel. diff value / grad r / grad p (goal <= {relative_goal:g})",
            f"{diff['value']:.1e} / {diff['grad_r']:.1e} / {diff['grad_p']:.1e}",
        ),
    ]
    for name in ("scribe", "numpyro"):
        err = ll["relative_error_vs_float64"][name]
        rows.append(
            (
                f"   {name} rel. error vs float64 (value/r/p)",
                f"{err['value']:.1e} / {err['grad_r']:.1e} / {err['grad_p']:.1e}",
            )
        )
    for name in ("scribe", "numpyro"):
        rec = large[name]
        rows.append(
            (
                f"   large counts max abs error, {name}",
                f"{rec['max_abs_error']:.2e} (k={rec['at_k']:g}, r={rec['at_r']:.3g},"
                f" p={rec['at_p']:g}); plausible {rec['max_abs_error_plausible']:.2e}",
            )
        )
    rows += [
        ("2. SVI step, scribe builder model", ms(s["scribe"]["median_s"])),
        ("   plain NumPyro + AutoNormal", ms(s["plain_numpyro"]["median_s"])),
        (
            f"   ratio scribe/plain (goal <= {ratio_goal:g})",
            f"{svi['ratio_scribe_over_plain']:.3f}x",
        ),
        (
            "   plain NumPyro + AutoNormal, scribe's NB log_prob",
            ms(s["plain_scribe_nb"]["median_s"]),
        ),
        (
            "   ratio scribe/plain at the same likelihood",
            f"{svi['ratio_scribe_over_plain_scribe_nb']:.3f}x",
        ),
        (
            "   first step (compile), scribe / plain",
            f"{s['scribe']['first_call_s']:.2f} / "
            f"{s['plain_numpyro']['first_call_s']:.2f} s",
        ),
        (
            "3. VAE epoch, scribe builder VAE",
            f"{vae['scribe']['median_epoch_s']:.3f} s, min "
            f"{vae['scribe']['min_epoch_s']:.3f} s "
            f"(compile {vae['scribe']['first_step_s']:.1f} s)",
        ),
    ]
    scvi = vae["scvi"]
    if scvi["available"]:
        rows += [
            (
                "   scvi-tools SCVI(gene_likelihood='nb')",
                f"{scvi['median_epoch_s']:.3f} s, min {scvi['min_epoch_s']:.3f} s "
                f"(first epoch {scvi['helper']['first_epoch_s']:.1f} s)",
            ),
            (
                "   ratio scribe/scvi, median (min)",
                f"{vae['ratio_scribe_over_scvi']:.2f}x "
                f"({vae['ratio_scribe_over_scvi_min']:.2f}x)",
            ),
        ]
    else:
        rows.append(("   scvi-tools", f"not available ({scvi['reason']})"))
    return format_rows(rows)


def format_goals(met: dict[str, bool]) -> str:
    """One line: every goal, met or MISSED."""
    return "goals: " + ", ".join(
        f"{k} {'met' if v else 'MISSED'}" for k, v in met.items()
    )


def plot(
    ll: dict[str, Any],
    svi: dict[str, Any],
    vae: dict[str, Any],
    goals: dict[str, Any],
    title: str,
    path: Path,
) -> None:
    """Four bar charts: likelihood time, large-count error, SVI step, VAE epoch."""
    speedup_goal, ratio_goal = goals["likelihood_speedup_min"], goals["svi_ratio_max"]
    import matplotlib.pyplot as plt

    from scribe.plots import save_figure  # selects the Agg backend

    fig, axes = plt.subplots(1, 4, figsize=(16.0, 4.4), layout="constrained")
    colors = ("tab:blue", "tab:orange", "tab:green")

    def bars(ax: Any, labels: Sequence[str], values: Sequence[float]) -> None:
        ax.bar(labels, values, color=colors[: len(values)])
        for x, v in enumerate(values):
            ax.annotate(f"{v:.3g}", (x, v), ha="center", va="bottom", fontsize=8)

    t = ll["times"]
    bars(
        axes[0],
        ["scribe\nnb_log_prob", "numpyro\nNBProbs"],
        [t["scribe"]["median_s"] * 1e3, t["numpyro"]["median_s"] * 1e3],
    )
    axes[0].set_ylabel("median ms per call")
    axes[0].set_title(
        f"NB log-lik value+grad, {ll['shape'][0]}x{ll['shape'][1]}\n"
        f"numpyro/scribe {ll['speedup_numpyro_over_scribe']:.2f}x "
        f"(goal >= {speedup_goal:g})",
        fontsize=9,
    )
    large = ll["large_counts"]
    width = 0.38
    for i, name in enumerate(("scribe", "numpyro")):
        values = [large[name]["max_abs_error"], large[name]["max_abs_error_plausible"]]
        xs = [j + (i - 0.5) * width for j in range(2)]
        axes[1].bar(xs, values, width, color=colors[i], label=name)
        for x, v in zip(xs, values, strict=True):
            axes[1].annotate(f"{v:.2g}", (x, v), ha="center", va="bottom", fontsize=8)
    axes[1].set_xticks(
        [0, 1], ["whole grid", f"log P >= {PLAUSIBLE_LOG_PROB:g}"], fontsize=9
    )
    axes[1].set_yscale("log")
    axes[1].set_ylabel("max |log P - scipy float64|")
    axes[1].legend(fontsize=8)
    axes[1].set_title(
        f"float32 log P, k <= {max(large['k_values']):g}, r <= {large['r_range'][1]:g}",
        fontsize=9,
    )
    s = svi["times"]
    bars(
        axes[2],
        ["scribe\nbuilders", "NumPyro\n+AutoNormal", "NumPyro+AutoNormal\nscribe NB"],
        [
            s[name]["median_s"] * 1e3
            for name in ("scribe", "plain_numpyro", "plain_scribe_nb")
        ],
    )
    axes[2].tick_params(axis="x", labelsize=8)
    axes[2].set_ylabel("median ms per SVI step")
    axes[2].set_title(
        f"SVI step, batch {svi['batch_size']}: scribe/plain "
        f"{svi['ratio_scribe_over_plain']:.3f}x\n(goal <= {ratio_goal:g}); "
        f"same NB log_prob {svi['ratio_scribe_over_plain_scribe_nb']:.3f}x",
        fontsize=9,
    )
    scvi = vae["scvi"]
    labels, values = ["scribe\nVAE"], [vae["scribe"]["median_epoch_s"]]
    if scvi["available"]:
        labels.append("scvi-tools\nSCVI nb")
        values.append(scvi["median_epoch_s"])
        subtitle = (
            f"scribe/scvi {vae['ratio_scribe_over_scvi']:.2f}x "
            f"(min epochs {vae['ratio_scribe_over_scvi_min']:.2f}x)"
        )
    else:
        subtitle = "scvi-tools not available"
    bars(axes[3], labels, values)
    axes[3].set_ylabel("median s per epoch")
    axes[3].set_title(
        f"VAE epoch ({vae['cells_per_epoch']:,} cells)\n{subtitle}", fontsize=9
    )
    fig.suptitle(title, fontsize=10)
    save_figure(fig, path)


def readme_table(record: dict[str, Any]) -> str:
    """The README's benchmark table and the sentence under it, from the JSON.

    ``tests/test_readme.py`` checks that the README holds exactly this text.
    """
    ll, svi, vae = record["likelihood"], record["svi_step"], record["vae_epoch"]
    goals, met = record["goals"], record["goals"]["met"]
    config, run = record["config"], record["run"]
    t, s = ll["times"], svi["times"]
    diff, err = (
        ll["relative_difference_scribe_vs_numpyro"],
        ll["relative_error_vs_float64"],
    )
    large = ll["large_counts"]

    def triple(d: dict[str, float]) -> str:
        return f"{d['value']:.1e} / {d['grad_r']:.1e} / {d['grad_p']:.1e}"

    def goal(key: str) -> str:
        return "met" if met[key] else "MISSED"

    shape = " x ".join(f"{n:,}" for n in ll["shape"])
    scvi = vae["scvi"]
    if scvi["available"]:
        vae_peer = f"{scvi['median_epoch_s']:.2f} s ({scvi['min_epoch_s']:.2f} s)"
        vae_ratio = (
            f"{vae['ratio_scribe_over_scvi']:.2f}x "
            f"({vae['ratio_scribe_over_scvi_min']:.2f}x)"
        )
    else:
        vae_peer, vae_ratio = f"not available ({scvi['reason']})", "-"
    steps = f"{vae['steps_per_epoch']} x {config['batch_size']} cells"
    rows = [
        "| measurement | scribe | peer | ratio | goal |",
        "|---|---|---|---|---|",
        f"| (1) NB log-likelihood value+grad (r, p), {shape}, jitted "
        f"| {ms(t['scribe']['median_s'], 1)} "
        f"| numpyro `NegativeBinomialProbs` {ms(t['numpyro']['median_s'], 1)} "
        f"| **{ll['speedup_numpyro_over_scribe']:.2f}x faster** "
        f"| >= {goals['likelihood_speedup_min']:g}x: {goal('speedup_ge_3')} |",
        f"| relative difference from numpyro: value / grad r / grad p "
        f"| {triple(diff)} | | | <= {goals['likelihood_relative_difference_max']:g}: "
        f"{goal('relative_difference_le_1e-4')} |",
        f"| relative error vs float64 (scipy): value / grad r / grad p "
        f"| {triple(err['scribe'])} | {triple(err['numpyro'])} | | |",
        f"| large counts (k <= {max(large['k_values']):.0e}, r in "
        f"[{large['r_range'][0]:g}, {large['r_range'][1]:g}]), max abs error where "
        f"log P >= {PLAUSIBLE_LOG_PROB:g} "
        f"| {large['scribe']['max_abs_error_plausible']:.1e} "
        f"| {large['numpyro']['max_abs_error_plausible']:.1e} | | |",
        f"| (2) one SVI step, builder NB model + mean-field guide vs hand-written "
        f"NumPyro + `AutoNormal` | {ms(s['scribe']['median_s'], 1)} "
        f"| {ms(s['plain_numpyro']['median_s'], 1)} "
        f"| **{svi['ratio_scribe_over_plain']:.2f}x** "
        f"| <= {goals['svi_ratio_max']:g}x: {goal('ratio_le_1.05')} |",
        f"| same, peer using scribe's NB log-prob (the builders' own overhead) "
        f"| {ms(s['scribe']['median_s'], 1)} "
        f"| {ms(s['plain_scribe_nb']['median_s'], 1)} "
        f"| {svi['ratio_scribe_over_plain_scribe_nb']:.2f}x | |",
        f"| (3) VAE epoch ({steps}), builder VAE vs "
        f'`scvi.model.SCVI(gene_likelihood="nb")`, median (fastest) '
        f"| {vae['scribe']['median_epoch_s']:.2f} s "
        f"({vae['scribe']['min_epoch_s']:.2f} s) | {vae_peer} | {vae_ratio} "
        "| none set |",
    ]
    worst = large["scribe"]
    versions = run["versions"]
    peer = (
        f"scvi-tools {versions.get('scvi-tools')} / torch {versions.get('torch')} "
        "in its own venv"
        if scvi["available"]
        else "scvi-tools not available"
    )
    sentence = (
        f"Measured in one run ({run['timestamp_utc'][:10]}, load average "
        f"{run['machine']['load_average'][0]:.1f} at the start and "
        f"{run['machine']['load_average_end'][0]:.1f} at the end; jax "
        f"{versions['jax']}, numpyro {versions['numpyro']}; {peer}, same latent "
        f"{vae['latent_dim']} / hidden {vae['hidden_dims'][0]}, epochs alternated "
        f"with ours). The whole-grid large-count maximum ({worst['max_abs_error']:.1e} "
        f"for scribe, at k = {worst['at_k']:,.0f}, p = {worst['at_p']:.2g}, where "
        f"log P = {worst['reference_at_max']:.1e}) is float32 rounding of the "
        "value itself."
    )
    return "\n".join(rows) + "\n\n" + sentence


if __name__ == "__main__":  # print the README block of the stored results
    import json

    stored = Path(__file__).resolve().parent / "results" / "scribe.json"
    print(readme_table(json.loads(stored.read_text())))
