import pytest

from scribe.io import atomic_write


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    seen = []

    def first(tmp):
        seen.append(tmp)
        tmp.write_bytes(b"first")

    assert atomic_write(target, first) == target
    assert target.read_bytes() == b"first"
    assert oct(target.stat().st_mode & 0o777) == oct(0o644)
    # the temporary file sits beside the target with the same suffix
    assert seen[0].parent == target.parent and seen[0].suffix == ".txt"

    def fail(tmp):
        tmp.write_bytes(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, fail)
    assert target.read_bytes() == b"first"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.txt"]


def test_atomic_write_keeps_the_suffix_for_writers_that_append_one(tmp_path):
    import numpy as np

    target = tmp_path / "arrays.npz"
    atomic_write(target, lambda tmp: np.savez(tmp, a=np.arange(3)))
    with np.load(target) as stored:
        assert stored["a"].tolist() == [0, 1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["arrays.npz"]
