import re
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_fit_simulated_example_runs_and_writes_loss_curves(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "fit_simulated.py"),
            *("--out", str(tmp_path), "--n-cells", "300", "--n-genes", "15"),
            *("--steps", "400"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = dict(re.findall(r"(\w+): p = ([0-9.]+)", out))
    assert set(found) == {"linked", "odds_ratio"}
    assert all(abs(float(p) - 0.3) < 0.05 for p in found.values())
    for name in ("loss_linked.png", "loss_odds_ratio.png"):
        assert (tmp_path / name).stat().st_size > 1000
