import importlib.util
import json
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_tokens_tour_runs_and_draws_the_masks(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("tour", EXAMPLES / "tokens_tour.py")
    tour = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tour)
    assert tour.main(["--out", str(tmp_path), "--samples", "8"]) == 0
    out = capsys.readouterr().out
    assert "row sums mu 6, theta 6, obs 1" in out
    assert (tmp_path / "tokens_masks.png").stat().st_size > 10_000


@pytest.mark.slow  # make demo runs it too
def test_hierarchical_example_writes_its_results(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("hier", EXAMPLES / "hierarchical.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    args = [
        "--out",
        str(tmp_path),
        "--groups",
        "2",
        "--simulations",
        "512",
        "--epochs",
        "2",
        "--samples",
        "200",
    ]
    assert example.main(args) == 0
    summary = json.loads((tmp_path / "summary_gaussian.json").read_text())
    assert summary["reloaded_same"] is True
    assert len(summary["posterior_mean"]) == 3
    assert 0.0 <= summary["c2st"] <= 1.0
    assert (tmp_path / "posterior_gaussian.png").stat().st_size > 10_000
    assert "C2ST against exact samples" in capsys.readouterr().out
    assert example.main([*args, "--model", "brownian"]) == 0
    brownian = json.loads((tmp_path / "summary_brownian.json").read_text())
    assert brownian["reloaded_same"] is True
    assert example.main([*args, "--model", "seir"]) == 0
    seir = json.loads((tmp_path / "summary_seir.json").read_text())
    assert seir["reference"] == "NUTS"
    assert seir["r_hat_max"] < 1.05
    assert (tmp_path / "posterior_seir.png").stat().st_size > 10_000
    assert "C2ST against NUTS samples" in capsys.readouterr().out
