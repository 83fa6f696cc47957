"""The example scripts run end to end and fit their targets."""

import importlib.util
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "name", ["example_pairwise", "example_triples", "example_fit_from_samples"]
)
def test_example_runs_and_fits(name, tmp_path):
    result = load(name).main(["--quiet", "--iterations", "150", "--out", str(tmp_path)])
    assert result["final_exact_max_error"] < 0.02
    assert any(p.suffix == ".png" for p in tmp_path.iterdir())
