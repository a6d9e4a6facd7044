"""Progress bars that a person sees both in a terminal and in a log file.

tqdm's own ``disable=None`` hides the bar whenever stderr is not a terminal, so a long step run
under ``nohup``, CI or ``2> log`` printed nothing for minutes. :func:`progress_bar` shows it there
too, but as plain lines (``\\r`` redraws become one line each) no more often than every
``LOG_INTERVAL`` seconds, so a log file gets a line every half minute, not a flood. In a terminal it
is the usual redrawn bar.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from tqdm.auto import tqdm

LOG_INTERVAL = 30.0  # seconds between lines when the output is not a terminal


class _Lines:
    """A stream wrapper that turns tqdm's carriage-return redraws into whole lines."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        line = text.replace("\r", "").rstrip()
        if line:
            self.stream.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def progress_bar(total: int, desc: str, *, enabled: bool = True, initial: int = 0,
                 stream: TextIO | None = None) -> tqdm:
    """A tqdm bar on ``stream`` (stderr): redrawn in a terminal, a line every 30 s elsewhere.

    ``enabled=False`` gives a silent bar with the same methods, so callers need no branches.
    """
    stream = stream if stream is not None else sys.stderr
    if not enabled:
        return tqdm(total=total, initial=initial, disable=True)
    if _is_terminal(stream):
        return tqdm(total=total, initial=initial, desc=desc, file=stream, dynamic_ncols=True)
    return tqdm(total=total, initial=initial, desc=desc, file=_Lines(stream), ncols=100,
                mininterval=LOG_INTERVAL, maxinterval=LOG_INTERVAL * 4, ascii=True)
