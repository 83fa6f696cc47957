"""Writing files whole: a temporary file in the target's folder, then a rename."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], Any]) -> Path:
    """Write ``path`` through ``write(handle)`` on a temporary file, then rename it.

    A reader never sees a half-written file; on any error the temporary file is
    removed and ``path`` is left as it was.

    Parameters
    ----------
    path : str or PathLike
        Destination; its folder is created if missing.
    write : callable
        Writes the whole content to the binary file handle it is given.

    Returns
    -------
    Path
        ``path``.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.chmod(tmp, 0o644)  # mkstemp creates the file private (0600)
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise
    return target
