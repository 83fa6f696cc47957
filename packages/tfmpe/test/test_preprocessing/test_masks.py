"""Input validation of independence rules, event shapes and mask sizes."""

import numpy as np
import pytest

from tfmpe import Tokens
from tfmpe.preprocessing import masks


def data(n_obs=3):
    return {
        "mu": np.zeros((2, 1, 1), np.float32),
        "obs": np.ones((2, n_obs, 1), np.float32),
    }


def test_a_rule_naming_an_unknown_key_is_an_error():
    with pytest.raises(ValueError, match=r"independence names keys \['obss'\]"):
        Tokens.from_pytree(data(), {"local": ["obss"]})


def test_a_bare_string_is_not_read_character_by_character():
    with pytest.raises(TypeError, match=r"independence\['local'\] must be a list"):
        Tokens.from_pytree(data(), {"local": "obs"})
    with pytest.raises(TypeError, match=r"independence\['cross'\] must be a list"):
        Tokens.from_pytree(data(), {"cross": ("mu", "obs")[0]})
    with pytest.raises(TypeError, match="key names are strings"):
        Tokens.from_pytree(data(), {"local": [1]})
    with pytest.raises(ValueError, match="dims must be"):
        Tokens.from_pytree(data(), {"cross_local": [("mu", "obs", (0.5, 0))]})


@pytest.mark.parametrize(
    ("event_shapes", "match"),
    [
        ({"obs": np.array([[-1], [2]])}, r"must lie in \[0, \(3,\)\]"),
        ({"obs": np.array([[5], [2]])}, r"must lie in \[0, \(3,\)\]"),
        ({"obs": np.array([[1.5], [2.0]])}, "must hold integers"),
        ({"obs": (4,)}, "does not fit"),
    ],
)
def test_event_shapes_must_fit_the_data(event_shapes, match):
    with pytest.raises((ValueError, TypeError), match=match):
        Tokens.from_pytree(data(), event_shapes=event_shapes)


def test_per_sample_event_shapes_mark_padding():
    tokens = Tokens.from_pytree(data(), event_shapes={"obs": np.array([[0], [2]])})
    np.testing.assert_array_equal(
        tokens.padding_mask, [[True, False, False, False], [True, True, True, False]]
    )


def test_a_mask_beyond_the_limit_is_refused_before_allocating(monkeypatch):
    monkeypatch.setattr(masks, "MASK_BYTES_LIMIT", 100)
    masks.cached_mask.cache_clear()
    tokens = Tokens.from_pytree(data(n_obs=20))  # 21 x 21 = 441 bytes
    with pytest.raises(ValueError, match=r"21 x 21 tokens would take"):
        _ = tokens.self_attention_mask
    masks.cached_mask.cache_clear()


def test_the_mask_limit_allows_32768_tokens():
    assert 32768**2 <= masks.MASK_BYTES_LIMIT < 32769**2
