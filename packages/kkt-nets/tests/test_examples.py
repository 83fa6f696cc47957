import re
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_quickstart_generates_trains_and_evaluates(tmp_path):
    out = subprocess.run(
        [
            *(sys.executable, str(EXAMPLES / "quickstart.py")),
            *("--out", str(tmp_path), "--epochs", "1"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert re.search(r"trained 8 steps", out)
    assert re.search(r"objective gap mean [0-9.]+%", out)
    assert (tmp_path / "run" / "best.pt").exists()
    assert (tmp_path / "set_cover_15x20" / "meta.json").exists()
