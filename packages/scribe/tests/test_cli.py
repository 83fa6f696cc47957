import anndata
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import scribe
from scribe.cli import main


@pytest.fixture(scope="module")
def h5ad(tmp_path_factory):
    rng = np.random.default_rng(8)
    counts = rng.negative_binomial(2, 0.25, size=(90, 12))
    adata = anndata.AnnData(
        X=np.zeros(counts.shape, np.float32),  # scanpy keeps raw counts in a layer
        obs=pd.DataFrame(index=[f"cell{i}" for i in range(90)]),
        var=pd.DataFrame(index=[f"gene{j}" for j in range(12)]),
    )
    adata.layers["counts"] = sp.csr_matrix(counts)
    path = tmp_path_factory.mktemp("data") / "data.h5ad"
    adata.write_h5ad(path)
    return path, counts


def test_fit_then_info_round_trip(h5ad, tmp_path, capsys):
    path, counts = h5ad
    out = tmp_path / "run"
    argv = ["fit", str(path), "--model", "nbvcp", "--steps", "100", "--layer"]
    argv += ["counts", "--batch-size", "30", "--out", str(out), "--write-h5ad"]
    assert main([*argv, "--seed", "4", "--samples", "20", "--no-progress"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "annotated.h5ad",
        "arrays.npz",
        "loss.png",
        "posterior_predictive.png",
        "scribe.json",
    ]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    annotated = anndata.read_h5ad(out / "annotated.h5ad")
    assert annotated.obs["scribe_p_capture_mean"].shape == (90,)
    assert list(annotated.var_names) == [f"gene{j}" for j in range(12)]
    np.testing.assert_array_equal(annotated.layers["counts"].toarray(), counts)
    # the saved fit is the API's fit with the same settings
    loaded = scribe.load(out)
    assert loaded.config.seed == 4 and loaded.config.layer == "counts"
    api = scribe.fit(
        anndata.read_h5ad(path),
        "nbvcp",
        layer="counts",
        n_steps=100,
        batch_size=30,
        seed=4,
        progress=False,
    )
    np.testing.assert_array_equal(api.loss_history, loaded.loss_history)
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "90 cells x 12 genes" in printed and "nbvcp" in printed
    assert "p " in printed and "posterior mean" in printed


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["fit", "missing.h5ad", "--out", "{tmp}/o"], "no such file"),
        (["fit", "{data}", "--out", "{tmp}", "--steps", "5"], "exists"),
        (["fit", "{data}", "--out", "{tmp}/o", "--layer", "raw"], "layers"),
        (["fit", "{data}", "--out", "{tmp}/o", "--steps", "0"], "n_steps"),
        (["info", "{tmp}"], "no scribe results"),
    ],
)
def test_errors_are_one_line_and_exit_1(h5ad, tmp_path, capsys, argv, match):
    argv = [a.format(tmp=tmp_path, data=h5ad[0]) for a in argv]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()
