import importlib.util
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_tokens_tour_runs_and_draws_the_masks(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("tour", EXAMPLES / "tokens_tour.py")
    tour = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tour)
    assert tour.main(["--out", str(tmp_path), "--samples", "8"]) == 0
    out = capsys.readouterr().out
    assert "row sums mu 6, theta 6, obs 1" in out
    assert (tmp_path / "tokens_masks.png").stat().st_size > 10_000
