"""One flag style for every kkt-nets command.

Flags are spelled in kebab case (``--batch-size``); the snake-case spelling
of a multi-word flag (``--batch_size``, as the spec writes the training
flags) stays accepted as an alias that parses to the same destination.
Messages name a flag through :func:`flag`, so they show the documented
spelling.
"""

from __future__ import annotations

import argparse
from typing import Any


def flag(name: str) -> str:
    """The documented spelling of the flag whose destination is ``name``.

    Parameters
    ----------
    name : str
        Destination name (``batch_size``).

    Returns
    -------
    str
        ``--batch-size``.
    """
    return "--" + name.replace("_", "-")


def add_flag(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    name: str,
    **kwargs: Any,
) -> argparse.Action:
    """Add the option ``name`` as ``--kebab-case`` with a ``--snake_case`` alias.

    Parameters
    ----------
    parser : ArgumentParser or argument group
    name : str
        Destination name, in snake case (``batch_size``).
    **kwargs
        Passed to ``add_argument`` (``type``, ``default``, ``help``, ...).

    Returns
    -------
    argparse.Action
    """
    spellings = [flag(name)]
    if "_" in name:
        spellings.append(f"--{name}")
    return parser.add_argument(*spellings, dest=name, **kwargs)
