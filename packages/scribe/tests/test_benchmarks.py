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


def test_write_results_puts_the_run_record_first_and_leaves_no_partial_file(
    tmp_path,
):
    harness = load_harness()
    path = tmp_path / "sub" / "r.json"
    run = harness.run_record(["numpy"], backend="cpu")
    harness.write_results(path, run, {"a": [1, 2], "b": math.inf})
    record = json.loads(path.read_text())
    assert list(record) == ["run", "a", "b"] and record["a"] == [1, 2]
    check_run_record(record, {"numpy"})
    assert record["run"]["machine"]["backend"] == "cpu"
    with pytest.raises(TypeError):
        harness.write_results(path, run, {"bad": object()})
    assert json.loads(path.read_text())["a"] == [1, 2]  # old file intact
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]


def test_a_peer_record_travels_on_stdout_among_other_lines():
    harness = load_harness()
    command = [
        sys.executable,
        "-c",
        f"import sys; sys.path.insert(0, {str(BENCHMARKS)!r}); import harness; "
        "print('noise'); harness.print_record({'x': 1.5, 'y': [1]}); print('tail')",
    ]
    record = harness.run_process(command)
    assert record["x"] == 1.5 and record["y"] == [1] and record["process_s"] > 0
    failed = harness.run_process([sys.executable, "-c", "print('no record')"])
    assert failed["error"] == "exit code 0"


def test_the_scvi_interpreter_is_found_by_flag_environment_or_venv(
    tmp_path, monkeypatch
):
    harness = load_harness()
    monkeypatch.setenv("SCRIBE_SCVI_PYTHON", "/from/env/python")
    assert str(harness.find_scvi_python("/flag/python")) == "/flag/python"
    assert str(harness.find_scvi_python(None)) == "/from/env/python"
    monkeypatch.delenv("SCRIBE_SCVI_PYTHON")
    monkeypatch.setattr(harness, "SCVI_PYTHON", tmp_path / "absent")
    assert harness.find_scvi_python(None) is None
    # the default is the repository's own venv, wherever the checkout lies
    venv = BENCHMARKS.parents[2] / ".venv-scvi" / "bin" / "python"
    assert venv == load_harness().SCVI_PYTHON


def check_run_record(record, libraries):
    """The top-level ``run`` record every benchmark writes (harness.run_record)."""
    run = record["run"]
    assert {"machine", "versions", "git", "command", "timestamp_utc"} <= run.keys()
    assert {"cpu_count", "platform", "load_average_end"} <= run["machine"].keys()
    assert {"commit", "dirty"} <= run["git"].keys()
    assert libraries <= run["versions"].keys()
    assert run["command"][0] and run["timestamp_utc"].endswith("+00:00")


def run_quick(script, *args):
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.mark.slow
def test_bench_atlas_quick_writes_the_documented_record(tmp_path):
    out = tmp_path / "atlas.json"
    run_quick("bench_atlas.py", "--out-dir", tmp_path)
    record = json.loads(out.read_text())
    assert out.with_suffix(".png").stat().st_size > 0
    check_run_record(
        record, {"jax", "numpyro", "scribe", "scvi-tools", "torch", "lightning"}
    )
    for key in ("sizes", "results", "ratios_vs_scvi", "goals"):
        assert key in record
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


@pytest.mark.slow
def test_bench_scribe_quick_writes_the_documented_record(tmp_path):
    run_quick("bench_scribe.py", "--out-dir", tmp_path)
    record = json.loads((tmp_path / "scribe.json").read_text())
    assert (tmp_path / "scribe.png").stat().st_size > 0
    check_run_record(record, {"jax", "numpyro", "scribe", "scvi-tools", "torch"})
    assert record["run"]["machine"]["backend"] == "cpu"
    assert record["config"]["quick"] is True and record["config"]["cells"] == 2_000
    ll, svi, vae = record["likelihood"], record["svi_step"], record["vae_epoch"]
    assert ll["speedup_numpyro_over_scribe"] > 0
    assert max(ll["relative_difference_scribe_vs_numpyro"].values()) <= 1e-4
    assert svi["losses_finite"] and svi["ratio_scribe_over_plain"] > 0
    assert len(vae["scribe"]["epoch_s"]) == record["config"]["epochs"]
    assert set(record["goals"]["met"]) == {
        "speedup_ge_3",
        "relative_difference_le_1e-4",
        "ratio_le_1.05",
    }
    if vae["scvi"]["available"]:
        assert len(vae["scvi"]["epoch_s"]) == record["config"]["epochs"]
        assert vae["ratio_scribe_over_scvi"] > 0
    else:  # scvi-tools may be unavailable here
        assert vae["scvi"]["reason"]
