"""The benchmarks' README blocks and their quick modes (so no benchmark rots)."""

import dataclasses
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name):
    """Import ``benchmarks/<name>.py`` under a name of its own."""
    unique = f"jax_smm_benchmarks_{name}"
    spec = importlib.util.spec_from_file_location(unique, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[unique] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_readme_blocks_are_rendered_from_the_results_json():
    blocks = load("readme_blocks")
    assert blocks.main(["--check"]) == 0


def run_record_shape(payload):
    """The keys of a results JSON's ``run`` record, one level into each dict."""
    return {
        key: sorted(value) if isinstance(value, dict) else None
        for key, value in payload["run"].items()
    }


def test_stored_results_share_one_run_record():
    fields = [f.name for f in dataclasses.fields(load("harness").RunRecord)]
    shapes = []
    for name in ("sampler_throughput", "fit_rf00379"):
        payload = json.loads((BENCH / "results" / f"{name}.json").read_text())
        assert next(iter(payload)) == "run" and list(payload["run"]) == fields
        shapes.append(run_record_shape(payload))
    assert shapes[0] == shapes[1]


def test_alignment_is_read_encoded_and_reweighted_as_dca_defines_it(tmp_path):
    msa = load("msa")
    fasta = tmp_path / "toy.fasta"
    fasta.write_text(">a\nAC-\nGU\n>b\nac-gn\n\n>c\nACGGU\n")
    sequences = msa.read_fasta(fasta)
    assert sequences == ["AC-GU", "AC-GN", "ACGGU"]
    np.testing.assert_array_equal(
        msa.encode_alignment(sequences),
        [[1, 2, 0, 3, 4], [1, 2, 0, 3, 0], [1, 2, 3, 3, 4]],  # N is a gap
    )
    with pytest.raises(ValueError, match="different lengths"):
        msa.encode_alignment(["AC", "ACG"])
    fasta.write_text("ACGU\n>a\nACGU\n")
    with pytest.raises(ValueError, match="before the first header"):
        msa.read_fasta(fasta)
    # weights against the definition, pair by pair: 1 / #{j : identity >= 0.8}
    seqs = np.random.default_rng(0).integers(0, 3, size=(40, 10))
    seqs[20:] = seqs[:20]  # exact copies, so clusters of two and more exist
    seqs[30:, :2] = (seqs[30:, :2] + 1) % 3  # 80 % identity: still neighbors
    seqs[39] = seqs[0]  # a cluster of three: rows 0, 20 and 39
    identity = (seqs[:, None, :] == seqs[None, :, :]).mean(axis=2)
    expected = 1.0 / (identity >= 0.8).sum(axis=1)
    weights = msa.sequence_weights(seqs, num_states=3, block_rows=7)
    np.testing.assert_allclose(weights, expected, rtol=0, atol=0)
    assert weights[0] == weights[39] == 1 / 3 and weights[30] == 0.5


def test_replace_block_rewrites_between_markers_only():
    blocks = load("readme_blocks")
    text = "a\n<!-- bench:x -->\nold\n<!-- /bench:x -->\nb\n"
    assert blocks.replace_block(text, "x", "new\n") == (
        "a\n<!-- bench:x -->\nnew\n<!-- /bench:x -->\nb\n"
    )
    with pytest.raises(ValueError, match="exactly one"):
        blocks.replace_block(text, "y", "new")
    with pytest.raises(ValueError, match="before"):
        blocks.replace_block("<!-- /bench:x --><!-- bench:x -->", "x", "new")


def run(script, *args):
    done = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


@pytest.mark.slow
def test_sampler_benchmark_quick_mode(tmp_path):
    readme = (BENCH.parent / "README.md").read_text()
    run(
        "bench_sampler.py",
        *("--quick", "--skip-thrml", "--side", "16", "--ks", "2", "5"),
        *("--out-dir", str(tmp_path)),
    )
    payload = json.loads((tmp_path / "sampler_throughput.json").read_text())
    names = {(r["implementation"], r["k"]) for r in payload["results"]}
    assert names == {(n, k) for n in ("ours", "ours_counts", "numpy") for k in (2, 5)}
    assert all(
        c["ours_counts_states_equal_ours"]["ok"] for c in payload["checks"].values()
    )
    assert (tmp_path / "sampler_throughput.png").is_file()
    stored = json.loads((BENCH / "results" / "sampler_throughput.json").read_text())
    assert run_record_shape(payload) == run_record_shape(stored)
    assert payload["run"]["git"]["dirty"] in (True, False)
    assert (BENCH.parent / "README.md").read_text() == readme  # quick: untouched


def reference_file(name):
    """A reference data file; skips naming where it looked (fails when required).

    ``REQUIRE_REFERENCE_DATA=1`` turns the skip into a failure.
    """
    path = load("harness").reference_data(name)
    if not path.is_file():
        message = f"{name} not found at {path} (set REFERENCE_DATA_DIR)"
        if os.environ.get("REQUIRE_REFERENCE_DATA") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.mark.slow
def test_fit_benchmark_quick_mode(tmp_path):
    fasta = reference_file("RF00379.fasta")
    run(
        "bench_fit_rf00379.py",
        "--data",
        str(fasta),
        "--quick",
        "--max-seconds",
        "8",
        "--out-dir",
        str(tmp_path),
    )
    payload = json.loads((tmp_path / "fit_rf00379_quick.json").read_text())
    assert payload["curve"] and payload["settings"]["quick"]
    assert 0.5 < payload["snapshot_noise_ceiling"]["median"] < 1.0
    # the data are named by file and content, not by this machine's folders
    sha256 = hashlib.sha256(fasta.read_bytes()).hexdigest()
    assert payload["data"]["file"] == "RF00379.fasta"
    assert payload["data"]["sha256"] == sha256
    assert str(fasta.parent) not in json.dumps(payload["data"])
    stored = json.loads((BENCH / "results" / "sampler_throughput.json").read_text())
    assert run_record_shape(payload) == run_record_shape(stored)
    assert (tmp_path / "fit_rf00379_quick.png").is_file()
