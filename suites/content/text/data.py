"""Text material: a user's folder of ``.txt``/``.md`` files (or one file), validated, and training windows.

Every mistake is one :class:`~genforge.errors.DataError` line naming the file and what was expected:
an empty folder, a binary or non-UTF-8 file, a corpus too short to train on. ``reference_text`` finds
tiny Shakespeare in the team's reference folder (``$GENFORGE_DATA`` or ``../shared/data``) for the
evaluation; ``embedded_text`` is the demo's text, from a registry package through
:func:`genforge.datasets.load_dataset`.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from genforge.errors import DataError

TEXT_SUFFIXES = (".txt", ".md")
MIN_CHARACTERS = 200


def read_text_file(path: Path) -> str:
    """One UTF-8 text file; a binary file (NUL bytes) or undecodable bytes are a ``DataError``."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror}); expected a UTF-8 text file") from None
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise DataError(f"{path}: binary file (NUL byte at offset {nul}); expected UTF-8 text")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: not UTF-8 text (invalid byte at offset {exc.start}); expected UTF-8 text"
        ) from None


def read_corpus(path: str | os.PathLike[str], min_characters: int = MIN_CHARACTERS) -> list[str]:
    """The documents of a folder (every ``.txt``/``.md`` below it, sorted by path) or of one file."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"{path}: not found; expected a folder of .txt/.md files or one text file")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
        if not files:
            raise DataError(f"{path}: no .txt or .md files in the folder; expected at least one text file")
    else:
        files = [path]
    docs = [read_text_file(f) for f in files]
    total = sum(len(d) for d in docs)
    if total < min_characters:
        raise DataError(f"{path}: {total} characters of text; expected at least {min_characters} to train on")
    return [d for d in docs if d]


def read_prompts(path: str | os.PathLike[str]) -> list[str]:
    """Prompts, one per non-empty line (``\\n`` inside a line stands for a newline)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: prompts file not found; expected a text file with one prompt per line")
    prompts = [line.replace("\\n", "\n") for line in read_text_file(path).splitlines() if line.strip()]
    if not prompts:
        raise DataError(f"{path}: no prompts; expected one prompt per non-empty line")
    return prompts


def reference_root() -> Path:
    """The team's reference data folder: ``$GENFORGE_DATA`` or ``../shared/data`` beside the project."""
    env = os.environ.get("GENFORGE_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3].parent / "shared" / "data"


def reference_text() -> str:
    """Tiny Shakespeare (1,115,394 characters) from the reference folder."""
    path = reference_root() / "tinyshakespeare" / "input.txt"
    if not path.is_file():
        raise DataError(
            f"{path}: tiny Shakespeare not found; set GENFORGE_DATA to the folder holding "
            "tinyshakespeare/input.txt"
        )
    return read_text_file(path)


def embedded_text(max_characters: int | None = None) -> str:
    """The demo's text: the Shakespeare text that ships with a declared registry package."""
    from genforge.datasets import load_dataset

    data = load_dataset("shakespeare")
    ids = data.x if max_characters is None else data.x[:max_characters]
    vocab = data.meta["vocab"]
    return "".join(vocab[i] for i in ids.tolist())


class Windows(torch.utils.data.Dataset):
    """Every ``block``-long window of a token stream with its next-token targets (made on demand), so
    an epoch of the core Trainer is every offset once, shuffled."""

    def __init__(self, ids: torch.Tensor, block: int) -> None:
        if len(ids) <= block + 1:
            raise DataError(f"the text has {len(ids)} tokens; expected more than the context of {block + 1}")
        self.ids, self.block = ids, block

    def __len__(self) -> int:
        return len(self.ids) - self.block

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.ids[i : i + self.block], self.ids[i + 1 : i + 1 + self.block]
