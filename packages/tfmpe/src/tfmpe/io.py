"""Files written whole or not at all."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a sibling temporary path, then rename it to ``path``.

    The temporary path is in the folder of ``path`` and has its suffix, so
    writers that pick a format from the suffix write the right one.

    Parameters
    ----------
    path : str or Path
        Destination; its folder is created if missing.
    write : callable
        Writes the whole file to the path it is given.

    Returns
    -------
    Path
        ``path``. If ``write`` fails, ``path`` is untouched and the temporary
        file removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{path.suffix}")
    try:
        write(tmp)
        tmp.replace(path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
