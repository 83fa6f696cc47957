"""Fixtures shared by the preprocessing tests (one test module per source module).

The root ``pyproject.toml`` runs pytest with ``--import-mode=importlib``, so the
helpers shared by ``test_tokens.py``, ``test_flatten.py``, ``test_masks.py`` and
``test_generation.py`` are fixtures (test modules cannot import each other).
"""

from __future__ import annotations

import numpy as np
import pytest

from tfmpe import Tokens


@pytest.fixture
def gaussian_slices():
    """Slice metadata of the hierarchical Gaussian (mu, theta, obs), by hand."""
    return {
        "mu": {"offset": 0, "event_shape": (1,), "batch_shape": (1,)},
        "theta": {"offset": 1, "event_shape": (5,), "batch_shape": (1,)},
        "obs": {"offset": 6, "event_shape": (5, 5), "batch_shape": (1,)},
    }


@pytest.fixture
def gaussian_tokens(hierarchical_gaussian_data, hierarchical_gaussian_spec):
    return Tokens.from_pytree(hierarchical_gaussian_data, hierarchical_gaussian_spec)


def _assert_same(actual, expected):
    """Exact equality of values, shapes and dtypes' kinds."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(actual, expected)


@pytest.fixture
def assert_same():
    """Exact equality of values, shapes and dtypes' kinds."""
    return _assert_same
