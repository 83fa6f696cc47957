import pytest

from kkt_nets.io import atomic_write, remove_stale_temporaries


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    suffixes = []

    def write(tmp):
        suffixes.append(tmp.suffix)
        assert tmp.parent == target.parent
        tmp.write_bytes(b"first")

    assert atomic_write(target, write) == target
    assert suffixes == [".txt"]  # writers that pick a format by suffix see it
    assert target.read_bytes() == b"first"
    assert oct(target.stat().st_mode & 0o777) == oct(0o644)

    def fail(tmp):
        tmp.write_bytes(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, fail)
    assert target.read_bytes() == b"first"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.txt"]


def test_stale_temporaries_are_removed(tmp_path):
    (tmp_path / ".last.abc123.partial.pt").write_bytes(b"killed")
    (tmp_path / "keep.pt").write_bytes(b"kept")
    removed = remove_stale_temporaries(tmp_path)
    assert [p.name for p in removed] == [".last.abc123.partial.pt"]
    assert [p.name for p in tmp_path.iterdir()] == ["keep.pt"]


def test_save_figure_writes_the_format_of_the_suffix_and_closes(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kkt_nets.plots import save_figure

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    assert save_figure(fig, tmp_path / "a.png") == tmp_path / "a.png"
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"
    assert not plt.fignum_exists(fig.number)
    fig, _ = plt.subplots()
    save_figure(fig, tmp_path / "b.pdf")
    assert (tmp_path / "b.pdf").read_bytes()[:4] == b"%PDF"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.pdf"]
