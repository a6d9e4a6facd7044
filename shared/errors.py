"""Errors meant for users: the CLI prints their message as one line and exits non-zero."""

from __future__ import annotations


class GenforgeError(Exception):
    """An expected mistake (bad file, bad option) with a message that names what and where.

    The message should name the file or option, the field, and what was expected, e.g.
    ``"prices.csv: column 'Close' has 3 non-numeric values (first at row 17); expected numbers"``.
    """


class DataError(GenforgeError, ValueError):
    """Input data that cannot be used as given (missing file, wrong format, implausible values)."""


class ConfigError(GenforgeError, ValueError):
    """A configuration (a model's or the trainer's) with a value out of range or a contradiction.

    Every config dataclass raises it from ``__post_init__``, so a bad setting fails where the config
    is made, with a message naming the field and what was expected. It is a ``ValueError`` too, as
    the sklearn-style callers expect of a bad parameter.
    """
