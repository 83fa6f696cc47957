"""Transformer flow-matching posterior estimation: the ``Tokens`` interface.

The public API is that of :mod:`tfmpe.preprocessing`, re-exported here.
"""

from tfmpe.preprocessing import *  # noqa: F403
from tfmpe.preprocessing import __all__  # noqa: F401
