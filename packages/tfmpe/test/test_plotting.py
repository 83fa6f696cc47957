import numpy as np
import pytest

from tfmpe.plotting import pair_plot, pyplot, save_figure


@pytest.mark.parametrize("suffix", [".png", ".pdf", ".svg"])
def test_save_figure_takes_the_format_from_the_suffix_and_closes(tmp_path, suffix):
    plt = pyplot()
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    path = save_figure(fig, tmp_path / f"line{suffix}")
    head = path.read_bytes()[:8]
    expected = {".png": b"\x89PNG", ".pdf": b"%PDF", ".svg": b"<?xml"}[suffix]
    assert head.startswith(expected)
    assert not plt.fignum_exists(fig.number)
    assert [p.name for p in tmp_path.iterdir()] == [f"line{suffix}"]


def test_save_figure_refuses_a_path_without_suffix_and_still_closes(tmp_path):
    plt = pyplot()
    fig, _ = plt.subplots()
    with pytest.raises(ValueError, match="no suffix"):
        save_figure(fig, tmp_path / "line")
    assert not plt.fignum_exists(fig.number)
    assert list(tmp_path.iterdir()) == []


def test_pair_plot_writes_the_figure(tmp_path):
    rng = np.random.default_rng(0)
    samples = {"a": rng.normal(size=200), "b": rng.normal(size=200)}
    path = pair_plot(samples, tmp_path / "pairs.png", reference=samples, title="t")
    assert path.stat().st_size > 10_000
