"""Tokenizers that turn text into integer ids for ``genforge.models.transformer.GPT`` and back.

- ``CharTokenizer``: one id per distinct character of the training text (nanoGPT's shakespeare_char
  scheme). Small, exact, and it refuses characters it has never seen with a clear error instead of
  silently mapping them to something else.
- ``BPETokenizer``: byte-level byte-pair encoding trained with the Hugging Face ``tokenizers``
  library (the Rust implementation behind GPT-2-style tokenizers). Byte-level means every input
  string is encodable, and ``decode(encode(s)) == s``.

Both share one small API: ``fit``/``train``, ``encode(text) -> list[int]``, ``decode(ids) -> str``,
``vocab_size``, ``save(path)`` (one JSON file, written atomically) and ``load(path)``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from genforge.errors import DataError
from genforge.io import write_text_atomic

_CHAR_FORMAT = "genforge-char-tokenizer"


class CharTokenizer:
    """Character-level tokenizer: ids are the sorted distinct characters of the fitted text."""

    def __init__(self, chars: Sequence[str] | None = None) -> None:
        self.chars: list[str] = []
        self._index: dict[str, int] = {}
        if chars is not None:
            self._set_chars(list(chars))

    def _set_chars(self, chars: list[str]) -> None:
        if any(len(c) != 1 for c in chars) or len(set(chars)) != len(chars):
            raise DataError("CharTokenizer: vocabulary must be distinct single characters")
        self.chars = chars
        self._index = {c: i for i, c in enumerate(chars)}

    @classmethod
    def fit(cls, text: str) -> CharTokenizer:
        """A tokenizer whose vocabulary is every distinct character in ``text`` (sorted)."""
        if not text:
            raise DataError("CharTokenizer.fit: the text is empty; expected at least one character")
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        """Ids of the characters of ``text``; an unknown character raises ``DataError`` naming it."""
        index = self._index
        try:
            return [index[c] for c in text]
        except KeyError:
            pos = next(i for i, c in enumerate(text) if c not in index)
            raise DataError(
                f"CharTokenizer.encode: character {text[pos]!r} at position {pos} is not in the "
                f"vocabulary of {self.vocab_size} characters it was fitted on"
            ) from None

    def decode(self, ids: Iterable[int]) -> str:
        """The text for ``ids`` (ints or a 1-D tensor); an out-of-range id raises ``DataError``."""
        chars = self.chars
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(chars):
                raise DataError(
                    f"CharTokenizer.decode: id {i} is outside the vocabulary (0..{len(chars) - 1})"
                )
            out.append(chars[i])
        return "".join(out)

    def to_dict(self) -> dict[str, Any]:
        return {"format": _CHAR_FORMAT, "version": 1, "chars": self.chars}

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the vocabulary as JSON (atomically)."""
        return write_text_atomic(path, json.dumps(self.to_dict(), ensure_ascii=False) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CharTokenizer:
        """Read a tokenizer written by ``save``; a missing or foreign file raises ``DataError``."""
        data = _read_json(path)
        if data.get("format") != _CHAR_FORMAT or not isinstance(data.get("chars"), list):
            raise DataError(f"{path}: field 'format' is not {_CHAR_FORMAT!r}; expected a saved CharTokenizer")
        return cls(data["chars"])


class BPETokenizer:
    """Byte-level BPE, trained and run by the ``tokenizers`` library."""

    def __init__(self, tokenizer: Any) -> None:
        self._tok = tokenizer

    @classmethod
    def train(
        cls,
        texts: str | Iterable[str],
        vocab_size: int = 1000,
        min_frequency: int = 2,
        special_tokens: Sequence[str] = (),
    ) -> BPETokenizer:
        """Learn merges from ``texts`` (one string or an iterator of strings) up to ``vocab_size``.

        The vocabulary starts from the 256 byte symbols, so ``vocab_size`` must be larger than 256
        plus the number of ``special_tokens``.
        """
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        alphabet = pre_tokenizers.ByteLevel.alphabet()
        if vocab_size <= len(alphabet) + len(special_tokens):
            raise DataError(
                f"BPETokenizer.train: vocab_size = {vocab_size}; expected more than "
                f"{len(alphabet) + len(special_tokens)} (256 byte symbols + special tokens)"
            )
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=list(special_tokens),
            initial_alphabet=alphabet,
            show_progress=False,
        )
        iterator = [texts] if isinstance(texts, str) else texts
        tok.train_from_iterator(iterator, trainer=trainer)
        return cls(tok)

    @property
    def vocab_size(self) -> int:
        return self._tok.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text).ids

    def decode(self, ids: Iterable[int]) -> str:
        return self._tok.decode([int(i) for i in ids], skip_special_tokens=False)

    def token_to_id(self, token: str) -> int | None:
        """Id of a (special) token string, or None."""
        return self._tok.token_to_id(token)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the whole tokenizer (merges, vocabulary, pipeline) as the library's JSON, atomically."""
        return write_text_atomic(path, self._tok.to_str())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> BPETokenizer:
        """Read a tokenizer written by ``save``; a missing or unreadable file raises ``DataError``."""
        from tokenizers import Tokenizer

        text = _read_text(path)
        try:
            return cls(Tokenizer.from_str(text))
        except Exception as exc:  # the Rust side raises a plain Exception for a malformed file
            raise DataError(
                f"{path}: not a tokenizers JSON file ({exc}); expected one written by BPETokenizer.save"
            ) from None


def _read_text(path: str | os.PathLike[str]) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found; expected a saved tokenizer (JSON)") from None


def _read_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: invalid JSON at line {exc.lineno}; expected a saved tokenizer") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object describing a tokenizer")
    return data
