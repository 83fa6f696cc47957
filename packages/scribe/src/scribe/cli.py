r"""``scribe``: fit a count model to an ``.h5ad`` file, and summarize a saved fit.

::

    scribe fit data.h5ad --model nbvcp --guide mean_field --components 3 \\
        --steps 20000 --batch-size 512 --out DIR [--layer counts] [--write-h5ad]
    scribe info DIR

``fit`` checks the output folder before fitting, then writes it whole (a
temporary folder renamed at the end): the saved fit (``scribe.json``,
``arrays.npz``; :func:`scribe.load` reads it), ``loss.png``,
``posterior_predictive.png`` and, with ``--write-h5ad``, ``annotated.h5ad``
(the input with the posterior summaries of :mod:`scribe.annotate`). Errors
print one line and exit with status 1 (2 for bad usage).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from scribe.config import FitConfig
from scribe.models.presets import MIXTURE_SHORTHANDS

ERRORS = (
    ValueError,
    TypeError,
    MemoryError,
    OSError,
    FloatingPointError,
    RuntimeError,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scribe", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    fit = commands.add_parser("fit", help="fit a model to an .h5ad file")
    fit.add_argument("data", type=Path, help="an .h5ad file of raw counts")
    fit.add_argument("--out", type=Path, required=True, help="output folder")
    fit.add_argument("--layer", help="layer with the raw counts (default: X)")
    fields = FitConfig.model_fields
    for flag, name in (
        ("--model", "model"),
        ("--parameterization", "parameterization"),
        ("--guide", "guide"),
        ("--schedule", "schedule"),
        ("--global-guide", "global_guide"),
    ):
        fit.add_argument(
            flag,
            default=fields[name].default,
            choices=fields[name].annotation.__args__,
        )
    fit.add_argument("--components", type=int, help="mixture components")
    fit.add_argument(
        "--mixture-params",
        nargs="+",
        default=["all"],
        help="parameters split by component: all, biological, mean, prob, gate, "
        "or names",
    )
    fit.add_argument(
        "--capture-param",
        choices=("p_capture", "phi_capture"),
        help="capture as a probability or an odds (default: as upstream)",
    )
    fit.add_argument("--steps", type=int, default=fields["n_steps"].default)
    fit.add_argument("--batch-size", type=int, help="cells per step (default: all)")
    fit.add_argument(
        "--learning-rate", type=float, default=fields["learning_rate"].default
    )
    fit.add_argument(
        "--network-learning-rate",
        type=float,
        default=fields["network_learning_rate"].default,
    )
    fit.add_argument(
        "--particles", type=int, default=1, help="guide draws per ELBO estimate"
    )
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--guide-rank", type=int, default=fields["guide_rank"].default)
    fit.add_argument("--latent-dim", type=int, default=fields["latent_dim"].default)
    fit.add_argument(
        "--hidden-dims",
        type=int,
        nargs="+",
        default=list(fields["hidden_dims"].default),
    )
    fit.add_argument(
        "--device", choices=("cpu", "gpu"), help="JAX device (default: JAX's)"
    )
    fit.add_argument("--write-h5ad", action="store_true", help="write annotated.h5ad")
    fit.add_argument("--overwrite", action="store_true", help="replace --out")
    fit.add_argument("--samples", type=int, default=100, help="draws per summary")
    fit.add_argument("--no-progress", action="store_true")
    info = commands.add_parser("info", help="summarize a saved fit")
    info.add_argument("results", type=Path, help="a folder written by scribe fit")
    return parser


def _device(kind: str | None) -> Any:
    import jax

    if kind is None:
        return contextlib.nullcontext()
    try:
        return jax.default_device(jax.devices(kind)[0])
    except RuntimeError as error:
        raise RuntimeError(f"--device {kind}: no such JAX device ({error})") from None


def _fit(args: argparse.Namespace) -> int:
    import anndata

    import scribe
    from scribe.io import (
        atomic_directory,
        atomic_write,
        check_output_dir,
        write_results,
    )
    from scribe.plots import plot_loss, plot_posterior_predictive

    check_output_dir(args.out, args.overwrite)
    if not args.data.is_file():
        raise FileNotFoundError(f"{args.data}: no such file")
    adata = anndata.read_h5ad(args.data)
    with _device(args.device):
        results = scribe.fit(
            adata,
            model=args.model,
            parameterization=args.parameterization,
            guide=args.guide,
            layer=args.layer,
            n_components=args.components,
            mixture_params=(
                args.mixture_params[0]
                if len(args.mixture_params) == 1
                and args.mixture_params[0] in MIXTURE_SHORTHANDS
                else tuple(args.mixture_params)
            ),
            capture_param_name=args.capture_param,
            global_guide=args.global_guide,
            n_steps=args.steps,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            network_learning_rate=args.network_learning_rate,
            num_particles=args.particles,
            schedule=args.schedule,
            seed=args.seed,
            progress=not args.no_progress,
            guide_rank=args.guide_rank,
            latent_dim=args.latent_dim,
            hidden_dims=tuple(args.hidden_dims),
        )
        with atomic_directory(args.out, args.overwrite) as folder:
            write_results(results, folder)
            plot_loss(results, folder / "loss.png")
            plot_posterior_predictive(results, folder / "posterior_predictive.png")
            if args.write_h5ad:
                results.to_anndata(adata, n_samples=args.samples, seed=args.seed)
                atomic_write(folder / "annotated.h5ad", adata.write_h5ad)
    print(f"wrote {args.out}: final loss {results.final_loss():.6g}")
    return 0


def _info(args: argparse.Namespace) -> int:
    import scribe

    results = scribe.load(args.results)
    meta = json.loads((args.results / "scribe.json").read_text())
    config = results.config
    losses = results.loss_history
    print(f"scribe results {args.results} (scribe {meta['scribe_version']})")
    print(f"  {'data':<17} {results.n_cells} cells x {results.n_genes} genes")
    for name in (
        "model",
        "parameterization",
        "guide",
        "global_guide",
        "n_components",
        "mixture_params",
        "capture_param_name",
        "layer",
    ):
        print(f"  {name:<17} {getattr(config, name)}")
    print(
        f"  {'steps':<17} {losses.size}, batch size {config.batch_size or 'all'}, "
        f"learning rate {config.learning_rate}, {config.schedule} schedule, "
        f"{config.num_particles} particle(s), seed {config.seed}"
    )
    print(
        f"  {'loss':<17} first {losses[0]:.6g}, final {results.final_loss():.6g} "
        f"(mean of the last 5 %)"
    )
    scalars = results.posterior_samples(
        200, return_sites=[k for k, s in results.sites.items() if not s.per_cell]
    )
    for name, draws in scalars.items():
        if draws[0].size <= 8:
            mean = np.array2string(draws.mean(0), precision=4)
            sd = np.array2string(draws.std(0), precision=2)
            print(f"  {name:<17} posterior mean {mean}, sd {sd}")
    files = sorted(p.name for p in args.results.iterdir())
    print(f"  {'files':<17} {', '.join(files)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``scribe`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        return _fit(args) if args.command == "fit" else _info(args)
    except ERRORS as error:
        print(f"scribe {args.command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
