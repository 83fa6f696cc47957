import json
from dataclasses import asdict

import numpy as np
import pytest

from kkt_nets.data.generate_instances import load_split
from kkt_nets.data.generate_instances import main as generate_main
from kkt_nets.data.generators import formulate
from kkt_nets.data.lp import scale
from kkt_nets.data.solve import solve
from kkt_nets.evaluate import evaluate, instance_metrics
from kkt_nets.evaluate import main as evaluate_main
from kkt_nets.train import parse_config, train


def test_metrics_are_in_original_units():
    form = formulate("set_cover", np.random.default_rng(3), rows=12, cols=15)
    scaled = scale(form.standardize())
    label = solve(scaled)
    exact = instance_metrics(scaled, label, label.x, label.lam)
    assert exact["objective_gap"] < 1e-8 and exact["max_violation"] < 1e-8
    assert abs(exact["dual_bound_gap"]) < 1e-8 and exact["duality_gap"] < 1e-8
    # a perturbed primal/dual pair, scored by hand on the unscaled formulation
    rng = np.random.default_rng(0)
    x = label.x + rng.normal(0, 0.1, label.x.shape)
    lam = np.abs(label.lam + rng.normal(0, 0.1, label.lam.shape))
    lam_original = scaled.unscale_dual(lam)  # duals of A_ge x >= 1 as -A x <= -1
    z_star = float(form.c @ label.x)
    got = instance_metrics(scaled, label, x, lam)
    want_gap = abs(form.c @ x - z_star) / max(1.0, abs(z_star))
    cover_violation = np.max(form.b_ge - form.A_ge @ x)  # A x >= 1 rows
    want_violation = max(0.0, cover_violation, np.max(x - 1.0), np.max(-x))
    # Lagrangian bound over the box [0, 1]: -b^T lam + sum_j min(r_j, 0)
    r = form.c - form.A_ge.T @ lam_original
    bound = float(form.b_ge @ lam_original + np.minimum(r, 0.0).sum())
    assert bound <= z_star + 1e-9
    assert got["objective_gap"] == pytest.approx(want_gap, rel=1e-9)
    assert got["max_violation"] == pytest.approx(want_violation, rel=1e-9)
    # the cover rows are 0/1 with rhs 1: the relative violation is the same
    assert got["row_relative_violation"] == pytest.approx(max(0, cover_violation))
    assert got["dual_bound_gap"] == pytest.approx(
        (z_star - bound) / max(1.0, abs(z_star)), rel=1e-9
    )
    assert got["duality_gap"] == pytest.approx(
        abs(form.c @ x - bound) / max(1.0, abs(z_star)), rel=1e-9
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    data = root / "data"
    generate_main(
        [
            *("--family", "independent_set", "--nodes", "12"),
            *("--n-train", "8", "--n-val", "4", "--n-test", "5"),
            *("--seed", "1", "--out", str(data), "--quiet"),
        ]
    )
    runs = {}
    for name, extra in (("gnn", []), ("mlp", ["--model", "mlp"])):
        runs[name] = root / name
        train(
            parse_config(
                [
                    *("--data-dir", str(data), "--out-dir", str(runs[name])),
                    *("--epochs", "2", "--hidden", "16", "--embedding-size", "8"),
                    *("--quiet", *extra),
                ]
            )
        )
    return data, runs


@pytest.mark.parametrize("model", ["gnn", "mlp"])
def test_evaluate_cli_reports_prediction_refinement_and_highs(
    trained, tmp_path, model, capsys
):
    data, runs = trained
    out = tmp_path / "eval.json"
    evaluate_main(
        [
            *("--checkpoint", str(runs[model] / "best.pt"), "--data-dir", str(data)),
            *("--out", str(out)),
        ]
    )
    assert "refined (warm PDHG): 5/5 optimal" in capsys.readouterr().out
    summary = json.loads(out.read_text())
    assert summary["instances"] == 5
    assert summary["model"] == ("GNNPolicy" if model == "gnn" else "KKTNetMLP")
    assert summary["loss"] == "certificate" and not summary["bounds_as_rows"]
    # the certificate is a lower bound: its gap to z* is never negative
    assert summary["prediction"]["dual_bound_gap"]["median"] >= -1e-9
    # the refinement is optimal and agrees with HiGHS to the tolerance
    for run in ("refined", "cold"):
        assert summary[run]["optimal"] == 5
        assert summary[run]["objective_gap"]["max"] < 1e-3
    for peer in ("highs_simplex", "highs_pdlp"):
        assert summary[peer]["seconds"] > 0 and summary[peer]["failures"] == 0
    assert summary["ratios"]["predict_refine_over_highs_simplex"] > 0
    spread = summary["embedding"]
    assert 0 < spread["mean_std"] < 1 and spread[
        "reference_isotropic"
    ] == pytest.approx(1 / np.sqrt(spread["dim"]))
    direct = evaluate(runs[model] / "best.pt", data, highs_pdlp=False)
    assert direct.highs_pdlp is None and "highs_pdlp" not in direct.to_dict()
    assert "predict_refine_over_highs_pdlp" not in direct.to_dict()["ratios"]
    assert asdict(direct.prediction.objective_gap) == pytest.approx(
        summary["prediction"]["objective_gap"]
    )
    # the JSON keeps its layout: the record's fields, ratios last
    assert list(summary)[-3:] == ["embedding", "highs_pdlp", "ratios"]
    assert len(load_split(data, "test")) == 5


def test_evaluate_checks_its_output_before_the_work(trained, tmp_path, capsys):
    data, runs = trained
    with pytest.raises(SystemExit):
        evaluate_main(
            [
                *("--checkpoint", str(runs["gnn"] / "best.pt")),
                *("--data-dir", str(data), "--out", str(tmp_path)),
            ]
        )
    assert "is a folder" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SystemExit):
        evaluate_main(
            [
                *("--checkpoint", str(runs["gnn"] / "best.pt")),
                *("--data-dir", str(data), "--out", str(blocker / "x.json")),
            ]
        )
    assert "cannot be written" in capsys.readouterr().err
