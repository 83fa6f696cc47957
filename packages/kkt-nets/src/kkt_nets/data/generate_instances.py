"""Write a dataset directory of scaled LP instances with their HiGHS labels.

``python -m kkt_nets.data.generate_instances --family set_cover --rows 50
--cols 50 --n-train 800 --n-val 100 --n-test 100 --seed 0 --out DIR`` (or
``kkt-generate ...``) writes

* ``DIR/{train,val,test}/lp_{index:05d}.npz``: the scaled LP (``A``, ``b``,
  ``c``, ``lb``, ``ub``, ``row_scale``, ``obj_scale``, ``row_kind``, ``name``;
  bounds on the columns, see :func:`~kkt_nets.data.lp.bounds_to_rows` for the
  spec's form) and its labels
  (``x_star``, ``lam_star``, ``z_star`` of the scaled LP, ``z_star_original``
  in the original units, ``status``, ``solve_seconds``), plus ``settings``
  (the JSON of family, params and seed that drew it);
* ``DIR/meta.json`` last (removed while a run is in progress): family,
  params (defaults filled in), seed, counts, created time.

Instance ``index`` of ``split`` is drawn from ``SeedSequence(seed,
spawn_key=(split number, index, attempt))``, so a seed gives the same
instances whatever the counts. An integer size flag may be a range ``LO:HI``
(``--items 20:60``): each instance then draws its own value uniformly from it
(first, from its own generator), so one dataset mixes sizes. Sizes that cannot
fit in memory, or datasets that cannot fit on the disk, are refused before
anything is written (the message names the flags and the estimate). An
instance HiGHS finds infeasible or unbounded is rejected with a message and
drawn again (next ``attempt``).
Files are written to a temporary name then renamed; a re-run keeps every
valid file drawn with the same settings and redoes missing, corrupted or
foreign ones.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from kkt_nets.cli import add_flag
from kkt_nets.cli import flag as flag_name
from kkt_nets.data.generators import GENERATORS, family_params, family_shape, generate
from kkt_nets.data.lp import LP, scale
from kkt_nets.data.solve import LPError, Solution, solve
from kkt_nets.io import atomic_write, check_output_file
from kkt_nets.resources import check_memory

SPLITS = ("train", "val", "test")
MAX_ATTEMPTS = 10
# CLI flag (without dashes, underscores for hyphens) -> type of a family parameter
SIZE_FLAGS = (
    "rows",
    "cols",
    "items",
    "bids",
    "customers",
    "facilities",
    "nodes",
    "m",
    "n",
)
"""Integer size flags that also take a range ``LO:HI`` (each instance draws)."""
FAMILY_FLAGS: dict[str, type] = {
    "rows": int,
    "cols": int,
    "density": float,
    "max_coef": int,
    "items": int,
    "bids": int,
    "customers": int,
    "facilities": int,
    "ratio": float,
    "nodes": int,
    "affinity": int,
    "m": int,
    "n": int,
}
# an instance's files and its generation hold this many copies of a dense A
GENERATION_COPIES = 6
FORMAT = 2
"""Instance file format: 2 keeps bounds on the columns (``lb``, ``ub``); files
of format 1 (bounds as rows, no ``lb``/``ub``) still load, as free variables."""


def instance_path(root: str | Path, split: str, index: int) -> Path:
    """Where instance ``index`` of ``split`` lives under ``root``.

    Parameters
    ----------
    root : str or Path
    split : str
        One of :data:`SPLITS`.
    index : int

    Returns
    -------
    Path
        ``root/split/lp_{index:05d}.npz``.
    """
    return Path(root) / split / f"lp_{index:05d}.npz"


def instance_rng(
    seed: int, split: str, index: int, attempt: int = 0
) -> np.random.Generator:
    """The generator that draws instance ``index`` of ``split``.

    Parameters
    ----------
    seed : int
        Dataset seed (non-negative).
    split : str
        One of :data:`SPLITS`.
    index, attempt : int
        Instance number and redraw number (after rejections).

    Returns
    -------
    numpy.random.Generator
        Seeded by ``SeedSequence(seed, spawn_key=(SPLITS.index(split), index,
        attempt))``.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    sequence = np.random.SeedSequence(
        seed, spawn_key=(SPLITS.index(split), index, attempt)
    )
    return np.random.default_rng(sequence)


def save_instance(path: str | Path, lp: LP, solution: Solution, settings: str) -> None:
    """Write a scaled LP and its labels to ``path`` atomically.

    Parameters
    ----------
    path : str or Path
        Target ``.npz`` file (its folder must exist).
    lp : LP
        The (scaled) LP.
    solution : Solution
        Its HiGHS solution.
    settings : str
        JSON of the family, params and seed that drew it.
    """
    arrays = {
        "A": lp.dense_A(),
        "b": lp.b,
        "c": lp.c,
        "lb": lp.lb,
        "ub": lp.ub,
        "row_scale": lp.row_scale,
        "obj_scale": np.float64(lp.obj_scale),
        "row_kind": np.array(lp.row_kind, dtype=str),
        "name": np.array(lp.name),
        "x_star": solution.x,
        "lam_star": solution.lam,
        "z_star": np.float64(solution.z),
        "z_star_original": np.float64(lp.objective(solution.x)),
        "status": np.array(solution.status),
        "solve_seconds": np.float64(solution.solve_seconds),
        "settings": np.array(settings),
    }
    atomic_write(Path(path), lambda tmp: np.savez(tmp, **arrays))


def _read(path: Path) -> tuple[LP, Solution, str]:
    try:
        with np.load(path, allow_pickle=False) as data:
            raw = {key: data[key] for key in data.files}
        lp = LP(
            raw["A"],
            raw["b"],
            raw["c"],
            row_scale=raw["row_scale"],
            obj_scale=float(raw["obj_scale"]),
            row_kind=tuple(str(kind) for kind in raw["row_kind"]),
            name=str(raw["name"]),
            lb=raw.get("lb"),
            ub=raw.get("ub"),
        )
        solution = Solution(
            x=np.asarray(raw["x_star"], dtype=np.float64),
            lam=np.asarray(raw["lam_star"], dtype=np.float64),
            z=float(raw["z_star"]),
            status=str(raw["status"]),
            solve_seconds=float(raw["solve_seconds"]),
        )
        settings = str(raw["settings"])
    except (
        OSError,
        EOFError,
        KeyError,
        TypeError,
        ValueError,
        zipfile.BadZipFile,
    ) as exc:
        raise ValueError(f"{path}: not a readable LP instance file ({exc})") from exc
    if solution.x.shape != (lp.n,) or solution.lam.shape != (lp.m,):
        raise ValueError(
            f"{path}: x_star {solution.x.shape} / lam_star {solution.lam.shape} do "
            f"not match the LP's {lp.m} rows and {lp.n} columns"
        )
    values = np.concatenate([solution.x, solution.lam, [solution.z]])
    if not np.all(np.isfinite(values)) or not np.isclose(
        float(lp.c @ solution.x), solution.z, rtol=1e-9, atol=1e-9
    ):
        raise ValueError(f"{path}: labels are non-finite or z_star != c^T x_star")
    return lp, solution, settings


def load_instance(path: str | Path) -> tuple[LP, Solution]:
    """Read one instance file written by this module.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    lp : LP
        The scaled LP (``row_scale``, ``obj_scale`` recover original units).
    solution : Solution
        Its HiGHS labels.

    Raises
    ------
    ValueError
        If the file is corrupted, truncated or inconsistent (the message names
        it).
    """
    lp, solution, _ = _read(Path(path))
    return lp, solution


def load_split(root: str | Path, split: str) -> list[tuple[LP, Solution]]:
    """Read every instance of one split of a dataset directory.

    Parameters
    ----------
    root : str or Path
        A directory written by :func:`main` (holding ``meta.json``).
    split : str
        One of :data:`SPLITS`.

    Returns
    -------
    list of (LP, Solution)
        Instances ``0 .. counts[split] - 1`` of ``meta.json``, by index.

    Raises
    ------
    ValueError
        Unknown split, a corrupted ``meta.json`` or instance file (the message
        names the file).
    FileNotFoundError
        If ``meta.json`` or an instance file is missing.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    meta_path = Path(root) / "meta.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path} not found: not a complete dataset")
    try:
        count = int(json.loads(meta_path.read_text())["counts"][split])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(
            f"{meta_path}: not a valid dataset description ({exc})"
        ) from exc
    instances = []
    for index in range(count):
        path = instance_path(root, split, index)
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing (meta.json lists {count})")
        instances.append(load_instance(path))
    return instances


def _is_cached(path: Path, settings: str) -> bool:
    if not path.is_file():
        return False
    try:
        return _read(path)[2] == settings
    except ValueError:
        return False


def resolve_params(
    params: dict[str, Any], rng: np.random.Generator | None = None, end: int = 1
) -> dict[str, Any]:
    """Family parameters with each range ``[lo, hi]`` replaced by one value.

    Parameters
    ----------
    params : dict
        Parameters; a range is a two-element list ``[lo, hi]``.
    rng : numpy.random.Generator, optional
        Draws each range uniformly in ``lo..hi``; without it, ``end`` picks
        ``lo`` (0) or ``hi`` (1).
    end : int

    Returns
    -------
    dict
    """
    resolved = {}
    for key, value in params.items():
        if isinstance(value, list):
            lo, hi = value
            value = int(rng.integers(lo, hi + 1)) if rng is not None else value[end]
        resolved[key] = value
    return resolved


def _draw_and_solve(
    family: str,
    params: dict[str, Any],
    seed: int,
    split: str,
    index: int,
    report: Callable[[str], None],
) -> tuple[LP, Solution]:
    name = f"{family}/{split}/{index:05d}"
    for attempt in range(MAX_ATTEMPTS):
        rng = instance_rng(seed, split, index, attempt)
        drawn = resolve_params(params, rng)
        lp = replace(scale(generate(family, rng, **drawn)), name=name)
        try:
            return lp, solve(lp)
        except LPError as exc:
            report(f"rejected {name} (attempt {attempt}): {exc}; drawing again")
    raise LPError(f"{name}: no solvable instance in {MAX_ATTEMPTS} attempts")


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of ``kkt-generate``.

    Returns
    -------
    argparse.ArgumentParser
    """
    parser = argparse.ArgumentParser(
        prog="kkt-generate",
        description="Generate scaled LP instances with HiGHS labels.",
    )
    add_flag(parser, "family", required=True, choices=sorted(GENERATORS))
    for split, default in zip(SPLITS, (800, 100, 100)):
        add_flag(
            parser,
            f"n_{split}",
            type=_count,
            default=default,
            help=f"{split} instances",
        )
    add_flag(parser, "seed", type=_count, default=0)
    add_flag(parser, "out", required=True, type=Path, help="dataset directory")
    add_flag(parser, "quiet", action="store_true", help="no progress output")
    group = parser.add_argument_group(
        "family parameters (each applies to the families that take it)"
    )
    for flag, kind in FAMILY_FLAGS.items():
        add_flag(
            group,
            flag,
            type=_size if flag in SIZE_FLAGS else kind,
            default=None,
            help="an integer or a range LO:HI" if flag in SIZE_FLAGS else None,
        )
    return parser


def _size(text: str) -> int | list[int]:
    """An integer size, or a range ``LO:HI`` as ``[LO, HI]``."""
    try:
        parts = [int(part) for part in text.split(":")]
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"must be an integer or a range LO:HI, got {text!r}"
        ) from error
    if len(parts) == 1:
        return parts[0]
    if len(parts) != 2 or not 0 < parts[0] <= parts[1]:
        raise argparse.ArgumentTypeError(
            f"a range must be LO:HI with 0 < LO <= HI, got {text!r}"
        )
    return parts


def check_sizes(family: str, params: dict[str, Any], count: int, out: Path) -> None:
    """Refuse instances that cannot fit in memory or datasets that cannot fit on disk.

    Parameters
    ----------
    family : str
    params : dict
        The family's parameters (sizes may be ranges ``[LO, HI]``).
    count : int
        Instances of the whole dataset.
    out : Path
        Dataset folder (need not exist yet).

    Raises
    ------
    MemoryError
        If one instance (dense ``A`` and its copies while it is generated and
        solved) would not fit in the memory available.
    ValueError
        If the dataset files would not fit on the disk of ``--out``.
    """
    rows, cols = family_shape(family, **resolve_params(params, end=1))
    flags = " / ".join(flag_name(flag) for flag in SIZE_FLAGS if flag in params)
    check_memory(
        GENERATION_COPIES * 8 * rows * cols,
        f"one {rows} x {cols} {family} instance",
        flags,
    )
    per_file = 8 * (rows * cols + 3 * rows + 5 * cols) + 4096
    folder = out
    while not folder.exists():
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if count * per_file > free:
        raise ValueError(
            f"{count:,} instances of up to {rows} x {cols} would take about "
            f"{count * per_file / 1e9:.1f} GB, more than the {free / 1e9:.1f} GB "
            f"free under {out}: reduce --n-train / --n-val / --n-test or {flags}"
        )


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text}")
    return value


def main(argv: Sequence[str] | None = None) -> None:
    """Generate, label and write a dataset directory (see the module doc).

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments (default ``sys.argv[1:]``).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    given = {
        flag: getattr(args, flag)
        for flag in FAMILY_FLAGS
        if getattr(args, flag) is not None
    }
    allowed = family_params(args.family)
    for flag in sorted(set(given) - set(allowed)):
        takes = " ".join(flag_name(p) for p in allowed)
        parser.error(
            f"{flag_name(flag)} does not apply to {args.family} (it takes {takes})"
        )
    params = {**allowed, **given}
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {args.out} is a file, not a folder")
    try:  # check the values before writing anything
        count = sum(getattr(args, f"n_{split}") for split in SPLITS)
        check_sizes(args.family, params, count, args.out)
        ranged = any(isinstance(value, list) for value in params.values())
        for end in (0, 1) if ranged else (1,):
            generate(
                args.family, np.random.default_rng(0), **resolve_params(params, end=end)
            )
    except (ValueError, MemoryError) as exc:
        parser.error(str(exc))
    settings = json.dumps(
        {
            "family": args.family,
            "params": params,
            "seed": args.seed,
            "format": FORMAT,
        },
        sort_keys=True,
    )
    counts = {split: getattr(args, f"n_{split}") for split in SPLITS}
    total = sum(counts.values())
    jobs = ((split, index) for split in SPLITS for index in range(counts[split]))
    written = rejected = 0

    def report(message: str) -> None:
        nonlocal rejected
        rejected += 1
        tqdm.write(message, file=sys.stderr)

    try:
        for split in SPLITS:
            (args.out / split).mkdir(parents=True, exist_ok=True)
            check_output_file(args.out / split / "lp_00000.npz", "--out")
    except (OSError, ValueError) as exc:
        parser.error(f"--out {args.out} cannot be written: {exc}")
    # until every file is in place the directory is not a complete dataset
    (args.out / "meta.json").unlink(missing_ok=True)
    for split, index in tqdm(
        jobs, desc=f"{args.family}", total=total, disable=args.quiet
    ):
        path = instance_path(args.out, split, index)
        if _is_cached(path, settings):
            continue
        try:
            lp, solution = _draw_and_solve(
                args.family, params, args.seed, split, index, report
            )
        except LPError as exc:
            raise SystemExit(f"kkt-generate: error: {exc}") from exc
        save_instance(path, lp, solution, settings)
        written += 1
    meta = {
        "family": args.family,
        "params": params,
        "seed": args.seed,
        "format": FORMAT,
        "counts": counts,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    text = json.dumps(meta, indent=2, sort_keys=True) + "\n"
    atomic_write(args.out / "meta.json", lambda tmp: tmp.write_text(text))
    if not args.quiet:
        print(
            f"{args.out}: {written} solved, {total - written} cached, "
            f"{rejected} rejected"
        )


if __name__ == "__main__":
    main()
