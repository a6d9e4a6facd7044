"""Errors meant for users: the CLI prints their message as one line and exits non-zero."""

from __future__ import annotations


class GenforgeError(Exception):
    """An expected mistake (bad file, bad option) with a message that names what and where.

    The message should name the file or option, the field, and what was expected, e.g.
    ``"prices.csv: column 'Close' has 3 non-numeric values (first at row 17); expected numbers"``.
    """


class DataError(GenforgeError, ValueError):
    """Input data that cannot be used as given (missing file, wrong format, implausible values)."""
