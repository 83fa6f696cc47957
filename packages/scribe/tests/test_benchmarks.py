import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_harness():
    spec = importlib.util.spec_from_file_location("harness", BENCHMARKS / "harness.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_epoch_seconds_interpolates_between_progress_marks():
    harness = load_harness()
    # warm-up chunk ends at step 100 (t = 5); then 1 s per 100 steps, except the
    # chunk 300 -> 400 which takes 3 s; epochs of 150 steps start at step 100
    marks = [(5.0, 100), (6.0, 200), (7.0, 300), (10.0, 400), (11.0, 500)]
    got = harness.epoch_seconds(marks, 150)
    # epoch 1: steps 100-250 -> t 5 .. 6.5; epoch 2: 250-400 -> 6.5 .. 10
    assert got == pytest.approx([1.5, 3.5])
    assert harness.epoch_seconds(marks[:1], 150) == []
    assert harness.epoch_seconds(marks[:2], 150) == []  # no whole epoch
    summary = harness.summarize([3.0, 1.0, 2.0])
    assert summary == {"median": 2.0, "min": 1.0, "all": [3.0, 1.0, 2.0]}


def test_write_json_atomic_leaves_no_partial_file(tmp_path):
    harness = load_harness()
    path = tmp_path / "sub" / "r.json"
    harness.write_json_atomic(path, {"a": [1, 2], "b": math.inf})
    assert json.loads(path.read_text())["a"] == [1, 2]
    with pytest.raises(TypeError):
        harness.write_json_atomic(path, {"bad": object()})
    assert json.loads(path.read_text())["a"] == [1, 2]  # old file intact
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]


@pytest.mark.slow
def test_bench_atlas_quick_writes_the_documented_record(tmp_path):
    out = tmp_path / "atlas.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "bench_atlas.py"),
            "--quick",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    record = json.loads(out.read_text())
    assert out.with_suffix(".png").stat().st_size > 0
    for key in (
        "machine",
        "git",
        "sizes",
        "versions",
        "results",
        "ratios_vs_scvi",
        "goals",
    ):
        assert key in record
    assert {"cpu_count", "platform"} <= record["machine"].keys()
    assert {"commit", "dirty"} <= record["git"].keys()
    assert {"jax", "numpyro", "scribe", "scvi-tools", "torch"} <= record[
        "versions"
    ].keys()
    sizes = record["sizes"]
    assert sizes["density_simulated"] == pytest.approx(0.1, rel=0.1)
    for name in ("nbdm", "vae"):
        result = record["results"][name]
        assert result["timing"] == "progress marks"
        assert result["epoch_s"]["median"] > 0
        assert len(result["epoch_s"]["all"]) == sizes["epochs"] - 1
        assert result["first_call_s"] > result["epoch_s"]["median"]
        assert result["compile_s"] > 0
        assert 0 < result["peak_rss_gb"] < 4
        assert result["loss_finite"] and result["loss_last"] < result["loss_first"]
        assert record["goals"]["peak_memory_below_4gb"][name] is True
    scvi = record["results"]["scvi"]
    goals = record["goals"]["not_slower_than_scvi"]
    if "error" in scvi:  # scvi-tools may be unavailable here
        assert scvi["error"] == "scvi-tools not available"
        assert goals["met"] is None and record["ratios_vs_scvi"]["vae"] is None
    else:
        assert len(scvi["epoch_s"]["all"]) == sizes["epochs"] - 1
        assert scvi["peak_rss_gb"] > 0
        ratio = record["ratios_vs_scvi"]["vae"]["epoch_median"]
        assert ratio == pytest.approx(
            record["results"]["vae"]["epoch_s"]["median"] / scvi["epoch_s"]["median"]
        )
        assert goals["vae"] == (ratio <= 1.0)
