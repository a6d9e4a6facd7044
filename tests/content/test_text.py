"""Text product: tokenizers round-trip, cached and uncached generation agree, a tiny GPT learns, streaming
and stop strings, resumable training, batch generation to JSONL."""

from __future__ import annotations

import json
import math

import pytest
import torch

from genforge.cli import main
from genforge.content import TextGenerator, read_corpus
from genforge.errors import DataError

TEXT = (
    "The quick brown fox jumps over the lazy dog. A stitch in time saves nine. "
    "Dear customer, thank you for your letter of the fifth. We shall reply within a week.\n\n"
) * 40
TINY = dict(n_layer=1, n_head=2, n_embd=32, block_size=32, batch_size=16, progress=False, device="cpu")


@pytest.fixture(scope="module")
def char_model():
    torch.set_num_threads(1)
    return TextGenerator(max_steps=150, lr=3e-3, warmup_steps=10, **TINY).fit(TEXT)


def test_char_and_bpe_round_trip(char_model):
    assert char_model.decode(char_model.encode(TEXT[:300])) == TEXT[:300]
    bpe = TextGenerator(tokenizer="bpe", bpe_vocab_size=300, max_steps=2, **TINY).fit(TEXT)
    sample = "Dear customer, thank you — naïve café!"  # unseen characters: byte-level BPE still encodes
    assert bpe.decode(bpe.encode(sample)) == sample
    assert len(bpe.encode(TEXT[:300])) < 300  # merges were learned from the corpus


def test_unknown_character_is_a_clear_error(char_model):
    with pytest.raises(DataError, match="not in the vocabulary"):
        char_model.generate("€", 5)


def test_tiny_model_learns(char_model):
    uniform = math.log(char_model.tokenizer_.vocab_size)
    first = char_model.history_[0]["loss"]
    assert char_model.val_loss_ < 0.6 * uniform and char_model.history_[-1]["loss"] < first
    assert char_model.score(TEXT[:800])["bits_per_char"] < uniform / math.log(2)


def test_cached_and_uncached_generation_agree(char_model):
    idx = char_model.encode("The quick")[None]
    kw = dict(temperature=0.9, top_k=10)
    a = char_model.model_.generate(idx, 20, use_cache=True, generator=torch.Generator().manual_seed(3), **kw)
    b = char_model.model_.generate(idx, 20, use_cache=False, generator=torch.Generator().manual_seed(3), **kw)
    assert torch.equal(a, b)


def test_stream_joins_to_generate_and_stops(char_model):
    kw = dict(temperature=0.0, seed=0)
    pieces = list(char_model.stream("Dear", 60, chunk=5, **kw))
    assert len(pieces) > 1 and "".join(pieces) == char_model.generate("Dear", 60, chunk=5, **kw)
    stopped = char_model.generate("Dear", 200, stop=["."], **kw)
    assert "." not in stopped and len(stopped) < 200


def test_save_load_keeps_tokenizer(char_model, tmp_path):
    char_model.save(tmp_path / "m")
    assert (tmp_path / "m" / "tokenizer.json").is_file()
    again = TextGenerator.load(tmp_path / "m")
    assert again.generate("Dear", 30, temperature=0) == char_model.generate("Dear", 30, temperature=0)


def test_cli_train_resume_generate_batch(tmp_path, capsys):
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.txt").write_text(TEXT[:2000], encoding="utf-8")
    (docs / "sub" / "b.md").write_text(TEXT[2000:4000], encoding="utf-8")
    (docs / "ignored.csv").write_text("x,y\n1,2\n", encoding="utf-8")
    assert len(read_corpus(docs)) == 2
    args = [
        "content",
        "text",
        "train",
        "--data",
        docs,
        "--out",
        tmp_path / "m",
        "--max-steps",
        "30",
        "--n-layer",
        "1",
        "--n-head",
        "2",
        "--n-embd",
        "32",
        "--block-size",
        "32",
        "--device",
        "cpu",
    ]
    assert main([str(a) for a in args]) == 0
    state = tmp_path / "m" / "checkpoints" / "trainer_state.safetensors"
    assert state.is_file() and (tmp_path / "m" / "checkpoints" / "tokenizer.json").is_file()
    # a longer run with the same --out resumes from step 30 instead of starting again
    assert (
        main(
            [str(a) for a in args[:-8]]
            + [
                "--max-steps",
                "40",
                "--n-layer",
                "1",
                "--n-head",
                "2",
                "--n-embd",
                "32",
                "--block-size",
                "32",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert (
        main(
            [
                "content",
                "text",
                "generate",
                "--model",
                str(tmp_path / "m"),
                "--prompt",
                "Dear",
                "--max-new-tokens",
                "20",
                "--stream",
                "--top-p",
                "0.9",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.startswith("Dear")
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("Dear\nThe quick\n\n", encoding="utf-8")
    out = tmp_path / "drafts.jsonl"
    assert (
        main(
            [
                "content",
                "text",
                "batch",
                "--model",
                str(tmp_path / "m"),
                "--prompts",
                str(prompts),
                "--out",
                str(out),
                "--max-new-tokens",
                "10",
            ]
        )
        == 0
    )
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["prompt"] for r in rows] == ["Dear", "The quick"] and all(len(r["text"]) > 0 for r in rows)
