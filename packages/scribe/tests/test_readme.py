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
