"""The benchmark runs, and the README's table is the saved JSON's."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name):
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCH))
    return module


def test_readme_table_is_generated_from_the_results_json():
    block = load("readme_block")
    result = json.loads((BENCH / "results" / "large_problem.json").read_text())
    readme = block.README.read_text()
    assert block.current_block(readme) == block.render(result)
    with pytest.raises(ValueError, match="no <!-- bench:large -->"):
        block.replace_block("no markers", "x")


@pytest.mark.slow
def test_benchmark_quick_mode_writes_its_results(tmp_path):
    bench = load("bench_large")
    assert bench.main(["--quick", "--out-dir", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "large_problem.json").read_text())
    assert result["variables"] == 40 and result["estimates"] == 60
    assert (
        result["run"]["git"]["commit"] is None
        or len(result["run"]["git"]["commit"]) == 40
    )
    assert result["run"]["versions"]["jax-smm"] is not None
    assert 0 <= result["max_error"] < 1 and result["fit_seconds"] > 0
    assert (tmp_path / "large_problem.png").stat().st_size > 0
