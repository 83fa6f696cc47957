from pathlib import Path

import pytest

from tfmpe.io import atomic_write


def test_atomic_write_writes_through_a_sibling_with_the_same_suffix(tmp_path):
    seen: list[Path] = []

    def write(tmp: Path) -> None:
        seen.append(tmp)
        tmp.write_text("whole")

    path = atomic_write(tmp_path / "sub" / "out.json", write)
    assert path == tmp_path / "sub" / "out.json"
    assert path.read_text() == "whole"
    assert seen[0].parent == path.parent and seen[0].suffix == ".json"
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.json"]


def test_a_failing_write_leaves_nothing_behind(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")

    def write(tmp: Path) -> None:
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, write)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
