"""A tour of ``Tokens`` on a hierarchical Gaussian, with a picture of its masks.

Builds ``Tokens`` for ``mu -> theta_i -> obs_ij`` (5 groups x 5 observations),
prints the layout, selects target / conditioning keys, overrides a value,
decodes, and draws the self-attention mask of the model and a multi-dimensional
``cross_local`` example to ``tokens_masks.png``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from tfmpe import Tokens
from tfmpe.plotting import pyplot, save_figure

INDEPENDENCE = {
    "local": ["obs", "theta"],
    "cross": [("mu", "obs"), ("obs", "mu")],
    "cross_local": [("theta", "obs", (0, 0))],
}


def simulate(rng_key: jax.Array, n_samples: int, groups: int = 5, per_group: int = 5):
    """Draw ``mu ~ N(0, 1)``, ``theta_i ~ N(mu, 1)``, ``obs_ij ~ N(theta_i, 1)``."""
    mu_rng_key, theta_rng_key, obs_rng_key = jax.random.split(rng_key, 3)
    mu = jax.random.normal(mu_rng_key, (n_samples, 1, 1))
    theta = mu + jax.random.normal(theta_rng_key, (n_samples, groups, 1))
    obs = theta[:, :, None, :] + jax.random.normal(
        obs_rng_key, (n_samples, groups, per_group, 1)
    )
    return {"mu": mu, "theta": theta, "obs": obs}


def draw_masks(path: Path, tokens: Tokens) -> None:
    """Save the model's mask and a multi-dimensional cross_local mask."""
    plt = pyplot()
    multi = Tokens.from_pytree(
        {"theta": jnp.zeros((1, 3, 2, 1)), "obs": jnp.zeros((1, 3, 4, 1))},
        {"local": ["theta", "obs"], "cross_local": [("theta", "obs", (0, 0))]},
    )
    fig, axes = plt.subplots(1, 2, figsize=(10, 5))
    for ax, tok, title in (
        (axes[0], tokens, "hierarchical Gaussian: mu | theta (5) | obs (5x5)"),
        (axes[1], multi, "cross_local on (0, 0): theta (3x2) vs obs (3x4)"),
    ):
        ax.imshow(np.asarray(tok.self_attention_mask), cmap="Greys", vmin=0, vmax=1)
        for s in list(tok.slices.values())[1:]:
            ax.axhline(s["offset"] - 0.5, color="tab:red", lw=0.8)
            ax.axvline(s["offset"] - 0.5, color="tab:red", lw=0.8)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("column token (attended to)")
        ax.set_ylabel("row token (attending); black = allowed")
    fig.tight_layout()
    save_figure(fig, path)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the tour and write the mask picture."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "output")
    parser.add_argument("--samples", type=int, default=100)
    args = parser.parse_args(argv)

    data = simulate(jax.random.key(0), args.samples)
    tokens = Tokens.from_pytree(data, INDEPENDENCE)
    print(
        f"data {tokens.data.shape}, {tokens.n_tokens} tokens, keys {tokens.key_order}"
    )
    for key, s in tokens.slices.items():
        print(f"  {key:5s} offset {s['offset']:2d} event {s['event_shape']}")
    mask = tokens.self_attention_mask
    print(
        f"mask {mask.shape} {mask.dtype}, {mask.nbytes} bytes; row sums "
        f"mu {int(mask[0].sum())}, theta {int(mask[1].sum())}, obs {int(mask[6].sum())}"
    )

    target = tokens.select_tokens(["mu", "theta"])
    context = tokens.select_tokens(["obs"])
    cross = tokens.cross_attention_mask(["mu", "theta"], ["obs"])
    print(
        f"target {target.data.shape}, context {context.data.shape}, "
        f"cross mask {cross.shape}"
    )

    shifted = tokens.with_values(mu=data["mu"] + 1.0)
    decoded = shifted.decode()
    assert np.allclose(decoded["mu"], data["mu"] + 1.0)
    assert np.array_equal(decoded["obs"], data["obs"])
    print("with_values + decode: mu shifted by 1, obs unchanged")

    path = args.out / "tokens_masks.png"
    draw_masks(path, tokens)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
