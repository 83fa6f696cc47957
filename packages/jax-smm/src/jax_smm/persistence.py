"""One versioned file for a fitted model: a NumPy ``.npz`` with a JSON header.

The file holds

* ``header``: UTF-8 JSON (as ``uint8``) with ``format`` (``"jax-smm-model"``),
  ``version``, the ``variables`` (their constructor fields), the ``factors``
  (``id`` and ``var_ids``; table shapes follow from the variables), the fit's
  ``config`` (or ``null``), the array shapes and a SHA-256 ``checksum`` of the
  arrays;
* ``theta``: every factor table, flattened and concatenated in factor order;
* ``states_cat`` and ``states_cont``: the stored chains (absent if none).

Files are written atomically (temporary file, then rename), are read without
pickle, and a file of another format or version, or whose content does not
match its checksum, is refused with an error naming it. :func:`atomic_write`
is the package's one way to create a file (models, results, reports, figures).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from jax_smm.config import SMMConfig
from jax_smm.features import State, validate_states
from jax_smm.graph import Factor, FactorGraph, Variable

FORMAT = "jax-smm-model"
VERSION = 1


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Create ``path`` through a temporary file in its folder, then rename it.

    Parameters
    ----------
    path : path-like
        The file to create or replace; its folder is created if missing.
    write : callable
        ``write(tmp_path)`` writes the whole content to ``tmp_path``.

    Returns
    -------
    pathlib.Path
        ``path``. A failing ``write`` leaves no partial file behind.

    Raises
    ------
    ValueError
        If ``path`` is an existing folder.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"path {str(path)!r} is a folder; give a file name in it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(
        prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent
    )
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        tmp.chmod(0o644)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _checksum(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over every array's name, dtype, shape and bytes (sorted by name)."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{a.dtype.str}:{a.shape};".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


def save_model(
    path: str | os.PathLike,
    graph: FactorGraph,
    states: State | None = None,
    config: SMMConfig | None = None,
) -> Path:
    """Write a graph, its stored chains and its fit config to one file.

    Parameters
    ----------
    path : path-like
        The file (any suffix; ``.npz`` is customary). Its folder is created.
    graph : FactorGraph
    states : dict, optional
        Chain states to keep with the model.
    config : SMMConfig, optional
        The settings of the fit that produced the graph.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    thetas = graph.thetas
    arrays = {
        "theta": np.concatenate(
            [np.ravel(thetas[fid]) for fid in graph.factor_ids]
        ).astype(np.float32)
    }
    if states is not None:
        arrays["states_cat"] = np.asarray(states["cat"], np.int32)
        arrays["states_cont"] = np.asarray(states["cont"], np.float32)
    header = {
        "format": FORMAT,
        "version": VERSION,
        "variables": [dataclasses.asdict(v) for v in graph.variables],
        "factors": [
            {"id": fid, "var_ids": list(scope)}
            for fid, scope in zip(graph.factor_ids, graph.factor_to_vars, strict=True)
        ],
        "config": None if config is None else config.to_dict(),
        "shapes": {name: list(a.shape) for name, a in arrays.items()},
        "checksum": _checksum(arrays),
    }
    encoded = np.frombuffer(json.dumps(header).encode(), np.uint8)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, header=encoded, **arrays)

    return atomic_write(path, write)


def load_model(
    path: str | os.PathLike,
) -> tuple[FactorGraph, State | None, SMMConfig | None]:
    """Read a file written by :func:`save_model`.

    Returns
    -------
    graph : FactorGraph
    states : dict or None
    config : SMMConfig or None

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        Naming ``path``, if it is not a readable model file, is of another
        format or version, or its content does not match its checksum.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{str(path)!r}: no such model file")
    arrays = _read_arrays(path)
    if "header" not in arrays:
        raise ValueError(f"{str(path)!r} is an .npz file without a jax-smm header")
    try:
        header = json.loads(arrays.pop("header").tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError) as err:
        raise ValueError(f"{str(path)!r}: corrupted header ({err})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        found = header.get("format") if isinstance(header, dict) else header
        raise ValueError(f"{str(path)!r} is not a {FORMAT!r} file (format {found!r})")
    if header.get("version") != VERSION:
        raise ValueError(
            f"{str(path)!r} has {FORMAT} version {header.get('version')!r}; this "
            f"jax_smm reads version {VERSION}"
        )
    if header.get("checksum") != _checksum(arrays):
        raise ValueError(
            f"{str(path)!r} is corrupted: its arrays do not match the checksum"
        )
    try:
        return _rebuild(header, arrays)
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{str(path)!r}: invalid model content ({err})") from None


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, read without pickle."""
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError("an array file, not an .npz archive")
        with data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
        raise ValueError(
            f"{str(path)!r} is not a readable {FORMAT} file ({err})"
        ) from None


def _rebuild(
    header: dict[str, Any], arrays: dict[str, np.ndarray]
) -> tuple[FactorGraph, State | None, SMMConfig | None]:
    """Graph, states and config from a checked header and its arrays."""
    variables = [Variable(**fields) for fields in header["variables"]]
    theta, factors, start = arrays["theta"], [], 0
    for spec in header["factors"]:
        shape = tuple(variables[v].cardinality for v in spec["var_ids"])
        stop = start + math.prod(shape)
        if stop > theta.size:
            raise ValueError("theta is shorter than the factors' tables")
        factors.append(
            Factor(spec["id"], tuple(spec["var_ids"]), theta[start:stop].reshape(shape))
        )
        start = stop
    if start != theta.size:
        raise ValueError("theta is longer than the factors' tables")
    graph = FactorGraph(variables, factors)
    states = None
    if "states_cat" in arrays:
        states = {"cat": arrays["states_cat"], "cont": arrays["states_cont"]}
        validate_states(graph, states, "states")
    config = header["config"]
    return graph, states, None if config is None else SMMConfig.from_dict(config)
