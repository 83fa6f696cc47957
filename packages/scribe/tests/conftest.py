from pathlib import Path

import numpy as np
import pytest

GOLDEN = (
    Path(__file__).resolve().parents[3]
    / ".."
    / "shared"
    / "data"
    / "scribe_log_likelihood_golden.npz"
)


@pytest.fixture(scope="session")
def golden():
    """The golden log-likelihoods of the project's reference data folder.

    Skips, naming the path looked at, when the file is absent.
    """
    if not GOLDEN.exists():
        pytest.skip(f"golden data not found at {GOLDEN.resolve()}")
    with np.load(GOLDEN) as data:
        return {k: data[k] for k in data.files}
