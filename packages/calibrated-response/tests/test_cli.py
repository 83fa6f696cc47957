import csv
import json
from pathlib import Path

import pytest

from calibrated_response.cli import main
from calibrated_response.maxent_smm import FittedDistribution

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "weather.json"


@pytest.fixture(scope="module")
def fitted_dir(tmp_path_factory):
    """The weather example fitted once, with its default settings."""
    out = tmp_path_factory.mktemp("weather")
    assert main(["fit", str(EXAMPLE), "--out", str(out), "--quiet"]) == 0
    return out


def test_cli_fits_the_example_and_writes_outputs(fitted_dir):
    problem = json.loads(EXAMPLE.read_text())
    marginals = json.loads((fitted_dir / "marginals.json").read_text())
    assert marginals["converged"] is True
    assert set(marginals["variables"]) == {"rain", "wind", "temp", "umbrella_sales"}
    rain = marginals["variables"]["rain"]
    assert rain["type"] == "binary" and abs(rain["p_true"] - 0.3) < 0.02
    assert abs(marginals["variables"]["temp"]["mean"] - 14) < 0.6
    rows = list(csv.DictReader((fitted_dir / "constraints.csv").open()))
    assert [r["id"] for r in rows] == [e["id"] for e in problem["estimates"]]
    assert {r["met"] for r in rows} == {"yes"}
    assert float(next(r for r in rows if r["id"] == "warm|dry")["error"]) < 0.02
    assert (fitted_dir / "marginals.png").read_bytes()[:4] == b"\x89PNG"
    assert not [p for p in fitted_dir.iterdir() if p.name.startswith(".")]


def test_cli_query_and_sample_answer_from_the_saved_model(fitted_dir, capsys):
    queries = ["P(temp > 20 | rain)", "E(umbrella_sales | rain, wind)"]
    assert main(["query", str(fitted_dir), *queries]) == 0
    lines = capsys.readouterr().out.splitlines()
    fitted = FittedDistribution.load(fitted_dir)
    for text, line in zip(queries, lines, strict=True):
        assert line == f"{text} = {fitted.query(text).value:.6g} (exact)"
    assert abs(fitted.query(queries[1]).value - 400) < 10  # the stated estimate
    out = fitted_dir / "draws.csv"
    assert main(["sample", str(fitted_dir), "-n", "50", "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 50 and set(rows[0]) == {
        "rain",
        "wind",
        "temp",
        "umbrella_sales",
    }
    assert {r["rain"] for r in rows} <= {"true", "false"}
    assert all(0 <= float(r["temp"]) <= 30 for r in rows)


def test_cli_query_errors_point_at_the_column(fitted_dir, capsys):
    assert main(["query", str(fitted_dir), "P(temp > | rain)"]) == 2
    err = capsys.readouterr().err
    assert "expected a number at column 10" in err and "\n           ^" in err
    assert main(["query", str(fitted_dir), "P(snow)"]) == 2
    assert "unknown variable 'snow'" in capsys.readouterr().err
    assert main(["query", str(fitted_dir / "nothing"), "P(rain)"]) == 2
    assert "holds no fitted distribution" in capsys.readouterr().err


def test_cli_unconverged_fit_exits_3_unless_allowed(tmp_path, capsys):
    args = ["fit", str(EXAMPLE), "--quiet", "--iterations", "40", "--chains", "64"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 3
    err = capsys.readouterr().err
    assert "the fit misses these estimates" in err and "sales|rain" in err
    marginals = json.loads((tmp_path / "a" / "marginals.json").read_text())
    assert marginals["converged"] is False  # written, to look at
    assert main([*args, "--out", str(tmp_path / "b"), "--allow-unconverged"]) == 0
    assert "warning: the fit misses" in capsys.readouterr().err


def test_cli_checks_the_output_and_overrides_before_fitting(tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert main(["fit", str(EXAMPLE), "--out", str(a_file), "--quiet"]) == 2
    assert "is a file" in capsys.readouterr().err
    assert main(["fit", str(EXAMPLE), "--out", str(tmp_path), "--target", "x"]) == 2
    assert "--target 'x' is not a variable" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["fit", str(EXAMPLE), "--out", str(tmp_path), "--seed", "-1"])
    assert not (tmp_path / "marginals.json").exists()


def test_cli_refuses_duplicate_json_keys(tmp_path, capsys):
    text = EXAMPLE.read_text().replace(
        '"max_bins": 15,', '"max_bins": 15, "max_bins": 5,'
    )
    path = tmp_path / "dup.json"
    path.write_text(text)
    assert main(["fit", str(path), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "duplicate JSON key(s) ['max_bins']" in capsys.readouterr().err


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
