"""User-facing errors: one line naming the file/key/flag and what was expected.

The CLI prints ``DD3DError`` messages as a single line and exits non-zero; every other exception is
a bug and keeps its traceback (shown in full with ``--debug``).
"""
from __future__ import annotations


class DD3DError(Exception):
    """An error caused by the user's input (config, data file, flag, run folder)."""


class DataError(DD3DError):
    """A dataset file or folder is missing, truncated or in the wrong format."""


class ConfigError(DD3DError):
    """A config file or ``--set`` override is invalid."""
