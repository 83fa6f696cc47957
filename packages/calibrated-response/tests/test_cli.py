import csv
import json
from pathlib import Path

from calibrated_response.cli import main

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "weather.json"


def test_cli_fits_the_example_and_writes_outputs(tmp_path):
    problem = json.loads(EXAMPLE.read_text())
    problem["config"].update(num_iterations=300, num_chains=256)
    path = tmp_path / "problem.json"
    path.write_text(json.dumps(problem))
    out = tmp_path / "out"
    assert main(["fit", str(path), "--out", str(out), "--quiet"]) == 0
    marginals = json.loads((out / "marginals.json").read_text())
    assert set(marginals["variables"]) == {"rain", "wind", "temp", "umbrella_sales"}
    rain = marginals["variables"]["rain"]["bin_probabilities"]
    assert abs(rain[1] - 0.3) < 0.05
    rows = list(csv.DictReader((out / "constraints.csv").open()))
    assert [r["id"] for r in rows] == [e["id"] for e in problem["estimates"]]
    assert float(next(r for r in rows if r["id"] == "warm|dry")["error"]) < 0.05
    assert (out / "marginals.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_reports_json_errors_with_their_path(tmp_path, capsys):
    problem = json.loads(EXAMPLE.read_text())
    problem["variables"][2]["upper_bound"] = -5
    problem["estimates"][0]["probability"] = 1.5
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(problem))
    assert main(["fit", str(path), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "variables.2.continuous" in err and "upper_bound" in err
    assert "estimates.0.probability.probability" in err
    assert not (tmp_path / "o").exists()


def test_cli_reports_unknown_variables(tmp_path, capsys):
    problem = json.loads(EXAMPLE.read_text())
    problem["estimates"][0]["proposition"]["variable"] = "snow"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(problem))
    assert main(["fit", str(path), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "unknown variable 'snow'" in capsys.readouterr().err
