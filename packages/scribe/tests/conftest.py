import os
from pathlib import Path

import numpy as np
import pytest

# the project's reference data folder, beside the checkout (not copied into it)
DEFAULT_REFERENCE_DATA = Path(__file__).resolve().parents[4] / "shared" / "data"
GOLDEN_NAME = "scribe_log_likelihood_golden.npz"


@pytest.fixture(scope="session")
def golden():
    """The golden log-likelihoods of the project's reference data folder.

    Read from ``$REFERENCE_DATA_DIR`` when set, else from the folder beside the
    checkout. Skips, naming the path looked at, when the file is absent;
    ``REQUIRE_REFERENCE_DATA=1`` turns that skip into a failure.
    """
    folder = os.environ.get("REFERENCE_DATA_DIR")
    path = (Path(folder) if folder else DEFAULT_REFERENCE_DATA) / GOLDEN_NAME
    if not path.is_file():
        message = f"{GOLDEN_NAME} not found at {path} (set REFERENCE_DATA_DIR)"
        if os.environ.get("REQUIRE_REFERENCE_DATA") == "1":
            pytest.fail(message)
        pytest.skip(message)
    with np.load(path) as data:
        return {k: data[k] for k in data.files}
