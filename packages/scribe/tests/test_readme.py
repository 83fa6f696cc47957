"""Every Python block of the README runs, in a fresh folder."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


@pytest.mark.parametrize(
    "code", [b for b in BLOCKS if "MySpec" not in b], ids=lambda b: b.split("\n")[0]
)
def test_readme_block_runs(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(code, str(README), "exec"), {"__name__": "readme"})


def test_the_walkthrough_is_among_the_blocks():
    assert any("results.to_anndata(adata)" in b for b in BLOCKS)


def test_the_atlas_table_is_the_results_json():
    """The README's scale numbers are those of benchmarks/results/atlas.json."""
    import json

    results = json.loads(
        (README.parent / "benchmarks" / "results" / "atlas.json").read_text()
    )
    text = README.read_text()
    for name in ("nbdm", "vae", "scvi"):
        record = results["results"][name]
        assert (
            f"{record['epoch_s']['median']:.2f} s ({record['epoch_s']['min']:.2f} s)"
            in text
        )
        assert f"{record['peak_rss_gb']:.2f} GB" in text
    for name in ("nbdm", "vae"):
        assert f"{results['ratios_vs_scvi'][name]['epoch_median']:.2f}x" in text
    assert results["goals"]["peak_memory_below_4gb"]["met"]
    assert results["goals"]["not_slower_than_scvi"]["met"]


def test_the_benchmark_table_is_rendered_from_the_results_json(monkeypatch):
    """The README's benchmark table is ``scribe_report.readme_table`` of scribe.json."""
    import importlib
    import json

    monkeypatch.syspath_prepend(str(README.parent / "benchmarks"))
    report = importlib.import_module("scribe_report")
    record = json.loads(
        (README.parent / "benchmarks" / "results" / "scribe.json").read_text()
    )
    assert report.readme_table(record) in README.read_text()
