"""Every python block of the README runs, in order, as a reader pasting them
into one session would (later blocks may use names of earlier ones)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.S | re.M)


def test_readme_python_blocks_run_in_order(tmp_path, monkeypatch, capsys):
    assert len(BLOCKS) >= 3  # quickstart, constraints, the fitted model
    monkeypatch.chdir(tmp_path)  # the blocks write files (model.npz)
    namespace: dict = {}
    for index, block in enumerate(BLOCKS):
        exec(compile(block, f"README.md python block {index}", "exec"), namespace)
    assert (tmp_path / "model.npz").is_file()
    assert "(" in capsys.readouterr().out  # printed the error and the top pairs
