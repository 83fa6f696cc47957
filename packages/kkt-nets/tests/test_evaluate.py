import json

import numpy as np
import pytest

from kkt_nets.data.generate_instances import load_split
from kkt_nets.data.generate_instances import main as generate_main
from kkt_nets.data.generators import formulate
from kkt_nets.data.lp import scale, standardize
from kkt_nets.data.solve import solve
from kkt_nets.evaluate import evaluate, instance_metrics
from kkt_nets.evaluate import main as evaluate_main
from kkt_nets.train import build_parser, train


def test_metrics_are_in_original_units():
    form = formulate("set_cover", np.random.default_rng(3), rows=12, cols=15)
    original = standardize(
        form.c, form.A_ub, form.b_ub, form.A_ge, form.b_ge, form.A_eq, form.b_eq,
        lb=form.lb, ub=form.ub,
    )  # fmt: skip
    scaled = scale(original)
    label = solve(scaled)
    exact = instance_metrics(scaled, label, label.x, label.lam)
    assert exact["objective_gap"] < 1e-8
    assert exact["max_violation"] < 1e-8 and exact["duality_gap"] < 1e-8
    # a perturbed primal/dual pair, scored by hand on the unscaled formulation
    rng = np.random.default_rng(0)
    x = label.x + rng.normal(0, 0.1, label.x.shape)
    lam = label.lam + rng.normal(0, 0.1, label.lam.shape)
    lam_original = scaled.unscale_dual(lam)
    z_star = float(form.c @ label.x)
    got = instance_metrics(scaled, label, x, lam)
    want_gap = abs(form.c @ x - z_star) / max(1.0, abs(z_star))
    cover_violation = np.max(form.b_ge - form.A_ge @ x)  # A x >= 1 rows
    want_violation = max(0.0, cover_violation, np.max(x - 1.0), np.max(-x))
    want_duality = abs(form.c @ x + original.b @ lam_original) / max(1.0, abs(z_star))
    assert got["objective_gap"] == pytest.approx(want_gap, rel=1e-9)
    assert got["max_violation"] == pytest.approx(want_violation, rel=1e-9)
    assert got["duality_gap"] == pytest.approx(want_duality, rel=1e-9)


@pytest.mark.parametrize("graphs", [False, True], ids=["mlp", "gnn"])
def test_evaluate_cli_on_a_trained_checkpoint(tmp_path, graphs):
    data = tmp_path / "data"
    generate_main(
        [
            *("--family", "independent_set", "--nodes", "12"),
            *("--n-train", "8", "--n-val", "4", "--n-test", "5"),
            *("--seed", "1", "--out", str(data), "--quiet"),
        ]
    )
    run = tmp_path / "run"
    extra = ["--use_bipartite_graphs"] if graphs else ["--model", "mlp"]
    train(
        build_parser().parse_args(
            [
                *("--data_dir", str(data), "--out_dir", str(run), "--epochs", "2"),
                *("--hidden", "16", "--embedding_size", "8", "--quiet", *extra),
            ]
        )
    )
    out = tmp_path / "eval.json"
    evaluate_main(
        [
            "--checkpoint",
            str(run / "best.pt"),
            "--data_dir",
            str(data),
            "--out",
            str(out),
        ]
    )
    summary = json.loads(out.read_text())
    assert summary["instances"] == 5
    assert summary["model"] == ("GNNPolicy" if graphs else "KKTNetMLP")
    assert (
        summary["highs_ms_per_instance"] > 0
        and summary["inference_ms_per_instance"] > 0
    )
    direct = evaluate(run / "best.pt", data)
    assert direct["objective_gap"]["mean"] == pytest.approx(
        summary["objective_gap"]["mean"]
    )
    assert len(load_split(data, "test")) == 5
