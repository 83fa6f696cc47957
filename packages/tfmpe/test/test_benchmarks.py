"""Every benchmark in ``--quick`` mode, into a temporary folder (slow); the
README's benchmark tables are those of the stored results."""

import importlib
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
RUN_KEYS = {"machine", "versions", "git_commit", "git_dirty", "command", "created"}


def run_quick(script: str, out_dir: Path) -> tuple[dict, str]:
    """Run ``script --quick --out-dir out_dir``; its JSON and its stdout."""
    done = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / script),
            "--quick",
            "--out-dir",
            str(out_dir),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    stem = script.removeprefix("bench_").removesuffix(".py")
    payload = json.loads((out_dir / f"{stem}.json").read_text())
    assert set(payload) == {"benchmark", "run", "settings", "results"}
    assert payload["benchmark"] == stem
    assert set(payload["run"]) == RUN_KEYS
    assert script in " ".join(payload["run"]["command"])
    assert payload["settings"]["quick"] is True
    return payload, done.stdout


def positive(value: float) -> bool:
    return math.isfinite(value) and value > 0


@pytest.mark.parametrize("stem", ["tokens", "fmpe"])
def test_stored_results_have_the_shared_top_level(stem):
    payload = json.loads((BENCHMARKS / "results" / f"{stem}.json").read_text())
    assert set(payload) == {"benchmark", "run", "settings", "results"}
    assert payload["benchmark"] == stem
    assert set(payload["run"]) == RUN_KEYS
    assert payload["settings"]["quick"] is False


def test_readme_tables_are_the_stored_results(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    readme = (BENCHMARKS.parent / "README.md").read_text().replace("**", "")
    stored = {
        stem: json.loads((BENCHMARKS / "results" / f"{stem}.json").read_text())
        for stem in ("fmpe", "tokens")
    }
    fmpe = importlib.import_module("fmpe_report").markdown(stored["fmpe"]["results"])
    tokens = importlib.import_module("tokens_report").readme_table(
        stored["tokens"]["results"]["per_n"]
    )
    for line in (fmpe + "\n" + tokens).splitlines():
        assert line in readme, line


@pytest.mark.slow
def test_tokens_benchmark_quick_mode_writes_its_results(tmp_path):
    payload, stdout = run_quick("bench_tokens.py", tmp_path)
    results = payload["results"]
    per_n = results["per_n"]
    assert [r["n_tokens"] for r in per_n] == [6 * n + 1 for n in (2, 5)]
    for record in per_n:
        for timing in record["times"].values():
            assert all(positive(t) for t in timing["times_s"])
            assert positive(timing["median_s"])
            assert positive(timing.get("first_call_s", timing["warmup_s"]))
        assert positive(record["decode_ratio_ours_over_peer"])
        assert record["mask_bytes"] == record["n_tokens"] ** 2
        assert record["traces"] == 1
    assert results["goals"]["met"]["mask_bytes_le_n2"]
    assert results["goals"]["met"]["traces_eq_1"]
    assert positive(results["total_s"])
    assert (tmp_path / "tokens.png").stat().st_size > 10_000
    assert "traces over 3 equal Tokens" in stdout


@pytest.mark.slow
def test_estimator_benchmark_quick_mode_writes_its_results(tmp_path):
    payload, stdout = run_quick("bench_fmpe.py", tmp_path)
    results = payload["results"]
    assert [r["budget"] for r in results["budgets"]] == [300, 600]
    for record in results["budgets"]:
        for name in ("ours", "flowjax"):
            assert all(0 <= v <= 1 for v in record[name]["values"])
            assert positive(record[f"{name}_fit"]["steps"])
            assert positive(record[f"{name}_fit"]["train_seconds"])
    assert [r["groups"] for r in results["generalization"]] == [5, 10, 20]
    for record in results["generalization"]:
        for name in ("joint_trained_at_5", "factorized"):
            assert all(0 <= v <= 1 for v in record[name]["values"])
        assert positive(record["factorized_min_ess"])
    speed = results["speed"]
    assert speed["step"]["same_loss"] is True
    assert positive(speed["step"]["tokens_s"]) and positive(speed["step"]["packed_s"])
    for name in ("ours_fit_steps_per_s", "flowjax_fit_steps_per_s"):
        assert positive(speed[name])
    for name in ("ours_samples_per_s", "flowjax_samples_per_s"):
        assert positive(speed[name])
    assert len(results["goals"]) == 3
    for name in ("fmpe.png", "fmpe_posterior.png"):
        assert (tmp_path / name).stat().st_size > 10_000
    assert "| simulations |" in stdout
