"""Every benchmark runs end to end in ``--quick`` mode and writes its results;
the README's benchmark numbers are those of the stored results."""

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
RUN_KEYS = {
    "versions",
    "platform",
    "cpu_count",
    "git_commit",
    "git_dirty",
    "command",
    "timestamp",
}


def run_quick(script: str, out_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
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


def test_readme_benchmark_blocks_are_the_stored_results(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    report = importlib.import_module("kkt_report")
    stored = json.loads((BENCHMARKS / "results" / "kkt.json").read_text())
    readme = (BENCHMARKS.parent / "README.md").read_text()
    blocks = report.readme_blocks(stored["results"])
    assert len(blocks) == 6
    for block in blocks:
        assert block in readme, block[:200]
    assert set(stored) == {"benchmark", "run", "settings", "results"}
    assert set(stored["run"]) >= RUN_KEYS


@pytest.mark.slow
def test_bench_kkt_quick_writes_its_results(tmp_path):
    done = run_quick("bench_kkt.py", tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    payload = json.loads((tmp_path / "kkt.json").read_text())
    assert set(payload) == {"benchmark", "run", "settings", "results"}
    assert payload["benchmark"] == "kkt" and payload["settings"]["quick"]
    assert set(payload["run"]) >= RUN_KEYS
    assert "--quick" in payload["run"]["command"]
    results = payload["results"]
    assert [r["label"] for r in results["families"]] == ["set_cover", "independent_set"]
    for record in results["families"]:
        assert record["test"]["refined"]["optimal"] == record["test"]["instances"]
        assert list(record["ood"]) == ["larger"]
        assert record["test_strict"]["tol"] == 1e-5
        assert set(record["train"]) == {
            "epochs_run",
            "steps",
            "train_seconds",
            "penalty",
        }
        assert record["curve"]["epoch"] == [0, 1]
    assert len(results["losses"]) == 7 and len(results["jepa"]) == 3
    assert results["batch"]["instances"] == 40
    assert (tmp_path / "kkt.png").stat().st_size > 10_000
    assert "| set_cover |" in done.stdout
