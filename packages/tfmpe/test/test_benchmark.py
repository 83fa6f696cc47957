import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_fmpe.py"


@pytest.mark.slow
def test_estimator_benchmark_quick_mode_writes_its_results(tmp_path):
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--out-dir", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    payload = json.loads((tmp_path / "fmpe.json").read_text())
    assert payload["benchmark"] == "fmpe" and payload["settings"]["quick"]
    results = payload["results"]
    assert [r["budget"] for r in results["budgets"]] == [300, 600]
    assert [r["groups"] for r in results["generalization"]] == [5, 10, 20]
    assert results["speed"]["step"]["same_loss"] is True
    assert len(results["goals"]) == 3
    for name in ("fmpe.png", "fmpe_posterior.png"):
        assert (tmp_path / name).stat().st_size > 10_000
    assert "| simulations |" in done.stdout
