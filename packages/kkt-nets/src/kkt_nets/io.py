"""Writing files whole: a temporary file in the target's folder, then a rename.

Temporary files are named ``.<stem>.<random>.partial<suffix>``; a process killed
outright (SIGKILL, power loss) can leave one behind, and
:func:`remove_stale_temporaries` clears them before a run reuses the folder.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

PARTIAL_SUFFIX = ".partial"
"""Suffix of the temporary files :func:`atomic_write` writes before renaming."""


def atomic_write(path: str | os.PathLike, write: Callable[[Path], Any]) -> Path:
    """Write ``path`` through ``write(tmp_path)`` on a temporary file, then rename it.

    The temporary file lies in the same folder and ends in the same suffix
    (``.<stem>.<random>.partial<suffix>``), so writers that choose a format by
    the suffix (``np.savez``, ``fig.savefig``) write the right one. A reader
    never sees a half-written file; on any error the temporary file is
    removed and ``path`` is left as it was.

    Parameters
    ----------
    path : str or PathLike
        Destination; its folder is created if missing.
    write : callable
        ``write(tmp_path)`` writes the whole content to the path it is given.

    Returns
    -------
    Path
        ``path``.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(
        dir=target.parent,
        prefix=f".{target.stem}.",
        suffix=PARTIAL_SUFFIX + target.suffix,
    )
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates the file private (0600)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files :func:`atomic_write` left in ``folder``.

    Parameters
    ----------
    folder : str or PathLike

    Returns
    -------
    list of Path
        The files removed.
    """
    stale = sorted(Path(folder).glob(f".*{PARTIAL_SUFFIX}*"))
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def check_output_file(path: str | os.PathLike, flag: str) -> Path:
    """Refuse an output file path that cannot be written, before any work.

    Creates the folder if missing and probes it with an empty file.

    Parameters
    ----------
    path : str or PathLike
    flag : str
        The option that named it (for the message).

    Returns
    -------
    Path

    Raises
    ------
    ValueError
        If ``path`` is a folder or its folder cannot be created or written.
    """
    target = Path(path)
    if target.is_dir():
        raise ValueError(f"{flag} {target} is a folder; give a file name")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise ValueError(f"{flag} {target} cannot be written: {error}") from error
    return target
