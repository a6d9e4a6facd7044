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


def test_muon_option_trains_hidden_matrices_only():
    """optimizer='muon' (opt-in): Muon gets the hidden nn.Linear weights, never the tied embedding/head,
    and the tiny model still learns; an unknown optimizer name is refused before any work."""
    from genforge.errors import ConfigError
    from genforge.models.transformer import GPT, GPTConfig
    from genforge.training import TrainConfig
    from genforge.training.engine import _likelihood_optimizers

    torch.manual_seed(0)
    gpt = GPT(GPTConfig(vocab_size=20, block_size=8, n_layer=1, n_head=2, n_embd=16, bias=False))
    cfg = TrainConfig(optimizer="muon", muon_lr=0.02, lr=1e-3, progress=False, device="cpu")
    (adamw, muon), lrs = _likelihood_optimizers(gpt, cfg)
    in_muon = {id(p) for g in muon.param_groups for p in g["params"]}
    in_adamw = {id(p) for g in adamw.param_groups for p in g["params"]}
    assert id(gpt.wte.weight) in in_adamw and id(gpt.wte.weight) not in in_muon
    assert not in_muon & in_adamw and len(in_muon | in_adamw) == len(list(gpt.parameters()))
    assert all(p.ndim == 2 for g in muon.param_groups for p in g["params"]) and lrs == [1e-3, 0.02]
    with pytest.raises(ConfigError, match="optimizer"):
        TrainConfig(optimizer="sgd")

    est = TextGenerator(max_steps=60, lr=3e-3, warmup_steps=5, optimizer="muon", lr_schedule="linear", **TINY)
    est.fit(TEXT)
    first = est.history_[0]["loss"]
    assert est.history_[-1]["loss"] < first - 1.0


def test_muon_run_checkpoints_and_resumes(tmp_path):
    """The two-optimizer state (AdamW + Muon) is written and read back: a finished run refits as a no-op."""
    from genforge.training import TrainConfig
    from genforge.training.engine import _lr_factor
    from genforge.training.state import read_trainer_state

    cfg = TrainConfig(lr_schedule="linear", warmup_steps=10, progress=False)
    assert [_lr_factor(s, 110, cfg) for s in (0, 9, 10, 60, 110)] == [0.1, 1.0, 1.0, 0.5, 0.0]
    kw = dict(max_steps=12, warmup_steps=2, optimizer="muon", **TINY)
    a = TextGenerator(**kw).fit(TEXT, out_dir=tmp_path)
    (state_file,) = tmp_path.rglob("trainer_state.safetensors")
    adamw_state, muon_state = read_trainer_state(state_file)["optimizers"]
    assert all("momentum_buffer" in v for v in muon_state["state"].values()) and muon_state["state"]
    assert all("exp_avg_sq" in v for v in adamw_state["state"].values())
    b = TextGenerator(**kw).fit(TEXT, out_dir=tmp_path)
    for (name, p), q in zip(a.model_.state_dict().items(), b.model_.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
