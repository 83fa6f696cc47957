import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_kkt.py"


@pytest.mark.slow
def test_benchmark_quick_mode_writes_its_results(tmp_path):
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--out-dir", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    payload = json.loads((tmp_path / "kkt.json").read_text())
    assert payload["benchmark"] == "kkt" and payload["settings"]["quick"]
    results = payload["results"]
    assert [r["label"] for r in results["families"]] == ["set_cover", "independent_set"]
    for record in results["families"]:
        assert record["test"]["refined"]["optimal"] == record["test"]["instances"]
        assert list(record["ood"]) == ["larger"]
        assert record["test_strict"]["tol"] == 1e-5
    assert len(results["losses"]) == 7 and len(results["jepa"]) == 3
    assert (tmp_path / "kkt.png").stat().st_size > 10_000
    assert "| set_cover |" in done.stdout
