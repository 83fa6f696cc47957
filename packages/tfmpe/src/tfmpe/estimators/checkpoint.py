"""Estimators and training states on disk: one ``.npz`` file each.

A file holds a JSON header (format name, version, the estimator's
configuration, keys, label vocabulary and per-key statistics) and the network
parameters as named arrays; a training checkpoint adds the optimizer state,
the best parameters so far, the history and the epoch. Files are written to a
temporary sibling and renamed, so a crash never leaves a half-written file. A
file of another format or version, a corrupted one, or one written for a
network of another shape is refused with an error naming the file.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from tfmpe.io import atomic_write
from tfmpe.nn.transformer import TransformerConfig
from tfmpe.preprocessing.masks import normalize_independence

if TYPE_CHECKING:
    from tfmpe.estimators.flow_matching import FlowMatchingEstimator

FORMAT = "tfmpe.FlowMatchingEstimator"
VERSION = 1


def _named_leaves(tree: Any, prefix: str) -> dict[str, np.ndarray]:
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {
        f"{prefix}{jax.tree_util.keystr(path)}": np.asarray(leaf)
        for path, leaf in leaves
    }


def _restore(tree: Any, arrays: dict[str, np.ndarray], prefix: str, path: Path) -> Any:
    """``tree`` with its leaves replaced by the file's, checking names and shapes."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(tree)
    leaves = []
    for key_path, leaf in flat:
        name = f"{prefix}{jax.tree_util.keystr(key_path)}"
        if name not in arrays:
            raise ValueError(
                f"{path} was written for a different model: it has no array {name}"
            )
        value = arrays[name]
        if value.shape != np.shape(leaf):
            raise ValueError(
                f"{path} was written for a model of another shape: {name} has shape "
                f"{value.shape}, this model needs {np.shape(leaf)}"
            )
        leaves.append(jnp.asarray(value, dtype=jnp.asarray(leaf).dtype))
    extra = [
        n
        for n in arrays
        if n.startswith(prefix)
        and n not in {f"{prefix}{jax.tree_util.keystr(p)}" for p, _ in flat}
    ]
    if extra:
        raise ValueError(
            f"{path} was written for a different model: unexpected arrays {extra[:3]}"
        )
    return jax.tree_util.tree_unflatten(treedef, leaves)


def _independence_json(independence: Any) -> dict[str, Any]:
    """A normalized independence specification as JSON-ready lists."""
    local, cross, cross_local = independence
    return {
        "local": list(local),
        "cross": [list(pair) for pair in cross],
        "cross_local": [
            [a, b, None if d is None else list(d)] for a, b, d in cross_local
        ],
    }


def _header(est: FlowMatchingEstimator) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "config": vars(est.config),
        "value_dim": est.value_dim,
        "functional_dim": est.functional_dim,
        "vocabulary": list(est.vocabulary),
        "target_keys": list(est.target_keys),
        "conditioning_keys": list(est.conditioning_keys),
        "sigma_min": est.sigma_min,
        "time_prior_exponent": est.time_prior_exponent,
        "independence": _independence_json(est.independence),
        "stats": {
            k: [np.asarray(m).tolist(), np.asarray(s).tolist()]
            for k, (m, s) in est.stats.items()
        },
    }


def _write(path: Path, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> Path:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, __header__=np.asarray(json.dumps(header)), **arrays)

    return atomic_write(path, write)


def _read(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no estimator file at {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        header = json.loads(str(arrays.pop("__header__")))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as err:
        raise ValueError(
            f"{path} is not a readable tfmpe estimator file: {err}"
        ) from err
    if header.get("format") != FORMAT:
        raise ValueError(
            f"{path} is not a tfmpe estimator file (format {header.get('format')!r})"
        )
    if header.get("version") != VERSION:
        raise ValueError(
            f"{path} has format version {header.get('version')}; this tfmpe reads "
            f"version {VERSION}"
        )
    return header, arrays


def check_checkpoint_path(path: str | Path, must_exist: bool) -> Path:
    """Validate a checkpoint path before training starts.

    Raises
    ------
    FileNotFoundError
        If ``must_exist`` and there is no file.
    ValueError
        If the path is a directory or its folder cannot be written.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"checkpoint {path} is a directory; give a file path")
    if must_exist and not path.is_file():
        raise FileNotFoundError(f"resume=True but checkpoint {path} does not exist")
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise ValueError(f"checkpoint folder {path.parent} cannot be written")
    return path


def save_estimator(est: FlowMatchingEstimator, path: str | Path) -> Path:
    """Write ``est`` to ``path`` (``.npz``), atomically.

    Returns
    -------
    Path
    """
    return _write(Path(path), _header(est), _named_leaves(est.params, "params"))


def _estimator_from_header(header: dict[str, Any]) -> FlowMatchingEstimator:
    from tfmpe.estimators.flow_matching import FlowMatchingEstimator

    est = FlowMatchingEstimator.__new__(FlowMatchingEstimator)
    est._build(
        value_dim=int(header["value_dim"]),
        functional_dim=int(header["functional_dim"]),
        vocabulary=tuple(int(v) for v in header["vocabulary"]),
        stats={
            k: (np.asarray(m, np.float32), np.asarray(s, np.float32))
            for k, (m, s) in header["stats"].items()
        },
        target_keys=tuple(header["target_keys"]),
        conditioning_keys=tuple(header["conditioning_keys"]),
        config=TransformerConfig.from_dict(header["config"]),
        sigma_min=float(header["sigma_min"]),
        time_prior_exponent=header["time_prior_exponent"],
        independence=normalize_independence(header["independence"]),
        rng_key=0,
    )
    return est


def load_estimator(path: str | Path) -> FlowMatchingEstimator:
    """Read an estimator written by :func:`save_estimator`.

    Raises
    ------
    FileNotFoundError, ValueError
        For a missing, foreign, corrupted or mismatched file.
    """
    path = Path(path)
    header, arrays = _read(path)
    try:
        est = _estimator_from_header(header)
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path} has a malformed header: {err}") from err
    est.params = _restore(est.params, arrays, "params", path)
    return est


def save_training_state(
    path: Path,
    est: FlowMatchingEstimator,
    params: Any,
    opt_state: Any,
    history: dict[str, list[float]],
    best: tuple[float, Any, int],
    epoch: int,
    rng_key: Any,
) -> Path:
    """Write everything :func:`load_training_state` needs to resume."""
    header = _header(est) | {
        "epoch": epoch,
        "history": history,
        "best_score": best[0] if math.isfinite(best[0]) else None,
        "best_epoch": best[2],
    }
    arrays = _named_leaves(params, "params")
    arrays |= _named_leaves(best[1], "best")
    arrays |= _named_leaves(opt_state, "opt")
    arrays["rng_key"] = np.asarray(jax.random.key_data(rng_key))
    return _write(path, header, arrays)


def load_training_state(
    path: Path, est: FlowMatchingEstimator, params: Any, opt_state: Any
) -> tuple[Any, Any, dict[str, list[float]], tuple[float, Any, int], int, Any]:
    """Resume state from ``path``, checked against ``est`` and the optimizer.

    Raises
    ------
    ValueError
        If the file was written for another model, configuration or optimizer.
    """
    header, arrays = _read(path)
    mine = _header(est)
    for field in ("config", "value_dim", "functional_dim", "vocabulary", "target_keys"):
        if header.get(field) != mine[field]:
            raise ValueError(
                f"checkpoint {path} was written for another model: {field} is "
                f"{header.get(field)!r}, this estimator has {mine[field]!r}"
            )
    params = _restore(params, arrays, "params", path)
    best_params = _restore(params, arrays, "best", path)
    try:
        opt_state = _restore(opt_state, arrays, "opt", path)
    except ValueError as err:
        raise ValueError(f"{err} (was it written with another optimizer?)") from err
    score = header["best_score"]
    best = (
        math.inf if score is None else float(score),
        best_params,
        header["best_epoch"],
    )
    rng_key = jax.random.wrap_key_data(jnp.asarray(arrays["rng_key"]))
    return params, opt_state, header["history"], best, int(header["epoch"]), rng_key
