import re
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_quickstart_trains_evaluates_and_solves_a_users_lp(tmp_path):
    out = subprocess.run(
        [
            *(sys.executable, str(EXAMPLES / "quickstart.py")),
            *("--out", str(tmp_path), "--epochs", "1"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert re.search(r"trained 13 steps", out)
    assert re.search(r"objective gap median [0-9.]+%", out)
    assert re.search(r"refined \(warm PDHG\): 20/20 optimal", out)
    assert re.search(r"your LP \(\d+ rows x 80 variables\): status optimal", out)
    assert (tmp_path / "run" / "best.pt").exists()
    assert (tmp_path / "independent_set" / "meta.json").exists()
