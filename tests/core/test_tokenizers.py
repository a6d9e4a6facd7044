"""Character and BPE tokenizers: round trips, persistence, and clear errors."""

from __future__ import annotations

import json

import pytest
import torch

from genforge.errors import DataError
from genforge.tokenizers import BPETokenizer, CharTokenizer

TEXT = (
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\n"
    "All:\nSpeak, speak.\n\nFirst Citizen:\nYou are all resolved rather to die than to famish?\n"
) * 20


def test_char_fit_encode_decode_round_trip():
    tok = CharTokenizer.fit(TEXT)
    assert tok.vocab_size == len(set(TEXT))
    assert tok.chars == sorted(set(TEXT))
    ids = tok.encode("Speak, speak.")
    assert all(0 <= i < tok.vocab_size for i in ids)
    assert tok.decode(ids) == "Speak, speak."
    assert tok.decode(torch.tensor(tok.encode(TEXT))) == TEXT  # tensors decode too


def test_char_unknown_character_is_a_clear_error():
    tok = CharTokenizer.fit("abc")
    with pytest.raises(DataError, match=r"'z' at position 2"):
        tok.encode("abz")
    with pytest.raises(DataError, match="outside the vocabulary"):
        tok.decode([0, 3])
    with pytest.raises(DataError, match="empty"):
        CharTokenizer.fit("")


def test_char_save_load(tmp_path):
    tok = CharTokenizer.fit(TEXT + "é")
    path = tok.save(tmp_path / "chars.json")
    again = CharTokenizer.load(path)
    assert again.chars == tok.chars
    assert again.encode("Speak é") == tok.encode("Speak é")
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write leaves no temporary file


def test_char_load_errors(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        CharTokenizer.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="invalid JSON"):
        CharTokenizer.load(bad)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(DataError, match="format"):
        CharTokenizer.load(other)


def test_bpe_train_round_trip_and_compression(tmp_path):
    tok = BPETokenizer.train(TEXT, vocab_size=300)
    assert 256 < tok.vocab_size <= 300
    ids = tok.encode(TEXT)
    assert tok.decode(ids) == TEXT
    assert len(ids) < len(TEXT.encode()) / 2  # merges learned: far fewer tokens than bytes
    # byte-level: text never seen in training still round-trips
    unseen = "Zwölf Boxkämpfer jagen Viktor ✓ quer über den Sylter Deich"
    assert tok.decode(tok.encode(unseen)) == unseen

    path = tok.save(tmp_path / "bpe.json")
    again = BPETokenizer.load(path)
    assert again.vocab_size == tok.vocab_size
    assert again.encode(TEXT) == ids


def test_bpe_train_from_iterator_with_special_tokens():
    lines = iter(TEXT.splitlines(keepends=True))
    tok = BPETokenizer.train(lines, vocab_size=280, special_tokens=["<|endoftext|>"])
    eot = tok.token_to_id("<|endoftext|>")
    assert eot is not None
    assert tok.encode("<|endoftext|>") == [eot]
    assert tok.decode(tok.encode("speak.<|endoftext|>")) == "speak.<|endoftext|>"


def test_bpe_errors(tmp_path):
    with pytest.raises(DataError, match="vocab_size"):
        BPETokenizer.train(TEXT, vocab_size=100)
    with pytest.raises(DataError, match="file not found"):
        BPETokenizer.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": 1}')
    with pytest.raises(DataError, match="not a tokenizers JSON"):
        BPETokenizer.load(bad)
