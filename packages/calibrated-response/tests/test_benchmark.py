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
def test_benchmark_runs_small(capsys):
    bench = load("bench_large")
    args = ["--variables", "40", "--estimates", "60", "--samples", "2000"]
    args += ["--iterations", "50", "--readout-sweeps", "20", "--repeats", "1"]
    assert bench.main([*args, "--no-save"]) == 0
    assert '"max_error"' in capsys.readouterr().out
