"""Plots of a fit."""

from jax_smm import plot_history


def test_plot_history_writes_png(tmp_path):
    history = {
        "iteration": [0, 1, 2],
        "max_error": [0.5, 0.2, 0.1],
        "mean_error": [0.1, 0.05, 0.01],
    }
    path = plot_history(history, tmp_path / "sub" / "curve.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["curve.png"]
