"""Files written whole, and fits saved and loaded.

A file is written to a temporary file in the target's folder, then renamed; a
set of files (a saved fit, the CLI's output) to a temporary folder, then
renamed. A saved fit is a folder of JSON and arrays (:func:`save_results`,
:func:`load`).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from scribe.config import FitConfig
from scribe.results import ScribeResults

FORMAT = "scribe-results"
VERSION = 1
CONFIG_FILE = "scribe.json"
ARRAYS_FILE = "arrays.npz"


def atomic_write(path: str | os.PathLike, write: Callable[[Path], Any]) -> Path:
    """Write ``path`` through ``write(tmp_path)``, then rename the temporary file.

    ``tmp_path`` is a fresh name in ``path``'s folder with ``path``'s suffix (so
    writers that pick the format from the suffix, or append one, keep it). A
    reader never sees a half-written file; on any error the temporary file is
    removed and ``path`` is left as it was.

    Parameters
    ----------
    path : str or PathLike
        Destination; its folder is created if missing.
    write : callable
        Writes the whole content to the path it is given.

    Returns
    -------
    Path
        ``path``.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.stem}.", suffix=target.suffix
    )
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        tmp.chmod(0o644)  # mkstemp creates the file private (0600)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


@contextmanager
def atomic_directory(
    path: str | os.PathLike, overwrite: bool = False
) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``, renamed to ``path`` at the end.

    A set of files appears whole or not at all: on any error the temporary
    folder is removed and ``path`` is left as it was.

    Parameters
    ----------
    path : str or PathLike
        The folder to create.
    overwrite : bool
        Replace an existing ``path`` (else it is an error, raised before any
        work).

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is false.
    """
    target = check_output_dir(path, overwrite)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        yield tmp
        tmp.chmod(0o755)  # mkdtemp creates the folder private (0700)
        if target.exists():
            old = target.with_name(f".{target.name}.old.{os.getpid()}")
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old)
        else:
            tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def check_output_dir(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Check that the folder ``path`` can be written, before long work.

    Raises
    ------
    FileExistsError
        If it exists (and ``overwrite`` is false) or is a file.
    PermissionError
        If its parent cannot be written.
    """
    target = Path(path)
    if target.exists() and (not target.is_dir() or not overwrite):
        raise FileExistsError(
            f"{target} exists; choose another output folder or overwrite it"
        )
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    if not os.access(parent, os.W_OK):
        raise PermissionError(f"cannot write in {parent}")
    return target


def _flatten(tree: dict[str, Any], prefix: str) -> dict[str, np.ndarray]:
    flat = {}
    for key, value in tree.items():
        if "/" in key:
            raise ValueError(f"parameter name {key!r} holds '/', which cannot be saved")
        name = f"{prefix}/{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(dict(value), name))
        else:
            flat[name] = np.asarray(value)
    return flat


def _unflatten(flat: dict[str, np.ndarray], prefix: str) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for name, value in flat.items():
        if not name.startswith(prefix + "/"):
            continue
        *path, leaf = name[len(prefix) + 1 :].split("/")
        node = tree
        for key in path:
            node = node.setdefault(key, {})
        node[leaf] = value
    return tree


def write_results(results: ScribeResults, folder: Path) -> None:
    """Write ``results`` into the existing folder ``folder``, each file whole."""
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "scribe_version": importlib.metadata.version("scribe"),
        "n_cells": results.n_cells,
        "n_genes": results.n_genes,
        "config": results.config.model_dump(mode="json"),
    }
    text = json.dumps(meta, indent=2) + "\n"
    atomic_write(folder / CONFIG_FILE, lambda tmp: tmp.write_text(text))
    arrays = _flatten(results.params, "param")
    arrays["loss_history"] = np.asarray(results.loss_history)
    arrays["cell_names"] = np.asarray(results.cell_names, dtype=str)
    arrays["gene_names"] = np.asarray(results.gene_names, dtype=str)
    atomic_write(folder / ARRAYS_FILE, lambda tmp: np.savez(tmp, **arrays))


def save_results(
    results: ScribeResults, path: str | os.PathLike, overwrite: bool = False
) -> Path:
    """Save a fit to the folder ``path``: ``scribe.json`` and ``arrays.npz``.

    ``scribe.json`` holds the format version and the configuration (the model
    and guide are rebuilt from it: no pickled code); ``arrays.npz`` the
    parameters (``param/{name}``, networks' weights as ``param/{name}/...``),
    the loss history and the cell and gene names. The counts are not saved:
    give them to :func:`load` where they are needed. Written whole
    (:func:`atomic_directory`).

    Returns
    -------
    Path
        ``path``.
    """
    with atomic_directory(path, overwrite) as folder:
        write_results(results, folder)
    return Path(path)


def load(
    path: str | os.PathLike, data: Any = None, layer: str | None = None
) -> ScribeResults:
    """Load a fit saved by :meth:`ScribeResults.save`.

    Parameters
    ----------
    path : str or PathLike
        The results folder.
    data : AnnData, array or sparse matrix, optional
        The fitted counts, for what reads them (amortized and VAE guides,
        mixture assignments); checked against the saved names.
    layer : str, optional
        The AnnData layer of the counts.

    Raises
    ------
    FileNotFoundError
        If ``path`` holds no saved fit.
    ValueError
        For another format or a newer version, or data that do not match.
    """
    folder = Path(path)
    config_path = folder / CONFIG_FILE
    if not config_path.is_file():
        raise FileNotFoundError(f"{folder} holds no scribe results ({CONFIG_FILE})")
    meta = json.loads(config_path.read_text())
    if meta.get("format") != FORMAT or meta.get("version", VERSION + 1) > VERSION:
        raise ValueError(
            f"{config_path} is not scribe results of version <= {VERSION} "
            f"(format {meta.get('format')!r}, version {meta.get('version')!r})"
        )
    with np.load(folder / ARRAYS_FILE, allow_pickle=False) as stored:
        arrays = {name: stored[name] for name in stored.files}
    results = ScribeResults(
        config=FitConfig.model_validate_json(json.dumps(meta["config"])),
        params=_unflatten(arrays, "param"),
        loss_history=arrays["loss_history"],
        cell_names=arrays["cell_names"],
        gene_names=arrays["gene_names"],
    )
    return results if data is None else results.with_data(data, layer)
