"""Writing a set of output files so that a reader never sees a mixed set."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

Writer = Callable[[Path], None]


def check_output_dir(directory: str | os.PathLike, name: str = "out") -> Path:
    """Check, before any long work, that ``directory`` can receive files.

    Parameters
    ----------
    directory : path-like
        An existing folder or one that can be created.
    name : str
        The argument's name, for the error message.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ValueError
        If it is a file, or it (or its nearest existing parent) is not
        writable.
    """
    path = Path(directory)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{name} {str(path)!r} is a file; give a folder")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{name} {str(path)!r}: {str(existing)!r} is not writable")
    return path


def write_output_set(
    directory: str | os.PathLike, writers: Mapping[str, Writer]
) -> Path:
    """Write every file of a set into a temporary folder, then move them in.

    Each ``writers[filename](tmp_path)`` writes one whole file. Only when all
    succeeded are the files moved into ``directory`` (each by an atomic
    rename), so an interrupted or failed run leaves the previous set intact
    and no half-written file.

    Parameters
    ----------
    directory : path-like
        Created if missing.
    writers : mapping of str to callable
        File names (no folders) and their writers.

    Returns
    -------
    pathlib.Path
        ``directory``.
    """
    directory = check_output_dir(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for filename in writers:
        if Path(filename).name != filename:
            raise ValueError(f"output file names must not hold folders: {filename!r}")
    staging = Path(tempfile.mkdtemp(prefix=".output-", dir=directory))
    try:
        for filename, write in writers.items():
            write(staging / filename)
        for filename in writers:
            os.replace(staging / filename, directory / filename)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return directory
