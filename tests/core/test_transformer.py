"""GPT: cached decoding equals uncached, sampling filters, repetition penalty, and real learning."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch

from genforge import kernels
from genforge.errors import GenforgeError
from genforge.models.transformer import (
    GPT,
    GPTConfig,
    apply_repetition_penalty,
    top_k_filter,
    top_p_filter,
)
from genforge.registry import build_model

TINY = dict(vocab_size=11, block_size=16, n_layer=2, n_head=2, n_embd=16)


def tiny_model(seed: int = 0, **overrides) -> GPT:
    torch.manual_seed(seed)
    model = GPT(GPTConfig(**{**TINY, **overrides})).eval()
    # larger weights than GPT-2's 0.02 init make logits spread out, so argmax ties cannot hide bugs
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.3)
    return model


def test_registry_family_and_tied_embeddings():
    model = build_model("gpt", TINY)
    assert isinstance(model, GPT) and model.family == "transformer"
    assert model.lm_head.weight is model.wte.weight
    logits = model(torch.zeros(2, 5, dtype=torch.long))
    assert logits.shape == (2, 5, TINY["vocab_size"])


def test_config_errors():
    with pytest.raises(GenforgeError, match="n_head"):
        GPTConfig(n_embd=10, n_head=3)
    with pytest.raises(GenforgeError, match="block_size"):
        GPTConfig(block_size=0)
    model = tiny_model()
    with pytest.raises(GenforgeError, match="block_size"):
        model(torch.zeros(1, 17, dtype=torch.long))


@pytest.mark.parametrize("batch", [1, 3])
def test_cached_and_uncached_greedy_decoding_match(batch):
    model = tiny_model(seed=batch)
    prompt = torch.randint(0, TINY["vocab_size"], (batch, 5), generator=torch.Generator().manual_seed(1))
    # 30 new tokens: the context outgrows block_size (16), so the crop fallback is covered too
    cached = model.generate(prompt, 30, temperature=0.0, use_cache=True)
    uncached = model.generate(prompt, 30, temperature=0.0, use_cache=False)
    assert cached.shape == (batch, 35)
    assert torch.equal(cached[:, :5], prompt)
    assert torch.equal(cached, uncached)
    assert len(set(cached[0, 5:].tolist())) > 1  # not a degenerate constant sequence


def test_uncompiled_cpu_decoding_uses_the_native_kernels_within_their_batch_limit(monkeypatch):
    """Uncompiled CPU decoding runs the step with the native kernels; above ``NATIVE_LINEAR_MAX_BATCH``
    sequences its linears go back to ``F.linear``; the tokens are the uncached path's either way."""
    import genforge.models.transformer as transformer

    if not kernels.has_rows_linear():
        pytest.skip("no AVX-512 build of genforge_cpu here: uncompiled decoding keeps F.linear")
    calls = []
    native = kernels.rows_linear
    monkeypatch.setattr(kernels, "rows_linear", lambda x, w, b: calls.append(x.shape[0]) or native(x, w, b))
    model = tiny_model(seed=7)
    for batch, limit in ((3, 32), (3, 2)):
        monkeypatch.setattr(transformer, "NATIVE_LINEAR_MAX_BATCH", limit)
        calls.clear()
        prompt = torch.randint(0, TINY["vocab_size"], (batch, 4), generator=torch.Generator().manual_seed(8))
        expected = model.generate(prompt, 10, temperature=0.0, use_cache=False)
        assert torch.equal(model.generate(prompt, 10, temperature=0.0), expected)
        assert (set(calls) == {batch}) if limit >= batch else not calls


@pytest.mark.parametrize("cpu_step", [False, True])
@pytest.mark.parametrize("batch", [1, 2, 4])
def test_decode_step_matches_uncached_reference(cpu_step, batch):
    """The step function that ``compile_decode`` compiles (static shapes: the whole cache and a mask
    of filled slots), run eagerly, gives the tokens of the uncached path — as on a GPU, and in the
    form the compiled CPU step uses (multiply-and-sum linears, attention on the filled slots, from
    batch 4 on through the compiled loops and, with an AVX-512 build, the native linear kernel); the
    crop fallback past block_size (16) is covered too."""
    model = tiny_model(seed=4)
    prompt = torch.randint(0, TINY["vocab_size"], (batch, 4), generator=torch.Generator().manual_seed(2))
    expected = model.generate(prompt, 20, temperature=0.0, use_cache=False)
    model._cpu_step = cpu_step
    model._native_linear = cpu_step and kernels.has_rows_linear()
    model._native_attention = cpu_step and kernels.available()
    model._compiled_step = model._decode_step  # what torch.compile wraps, without compiling
    assert torch.equal(model.generate(prompt, 20, temperature=0.0), expected)


def test_compiled_cpu_decode_step_with_native_linears_matches_uncached():
    """The real compiled CPU step at batch 4 (an inductor graph calling the native linear and attention
    kernels through their fake-tensor registrations) gives the uncached tokens at every step."""
    if not kernels.has_rows_linear():
        pytest.skip("no AVX-512 build of genforge_cpu here: the compiled step keeps inductor's loops")
    model = tiny_model(seed=6)
    prompt = torch.randint(0, TINY["vocab_size"], (4, 3), generator=torch.Generator().manual_seed(5))
    expected = model.generate(prompt, 12, temperature=0.0, use_cache=False)
    assert model.compile_decode(batch_sizes=(4,)) and model._native_linear and model._native_attention
    assert torch.equal(model.generate(prompt, 12, temperature=0.0), expected)


def test_one_query_attention_loops_equal_batched_matmuls():
    """The reductions that the compiled CPU step's attention is generated from equal the two-matmul
    form, on a slice of a larger cache (non-contiguous, as in the step)."""
    from genforge.models.transformer import _one_query_loops, attend_one_query

    torch.manual_seed(0)
    q = torch.randn(3, 2, 1, 8)
    k, v = torch.randn(3, 2, 12, 8), torch.randn(3, 2, 12, 8)
    torch.testing.assert_close(
        _one_query_loops(q, k[:, :, :7], v[:, :, :7]), attend_one_query(q, k[:, :, :7], v[:, :, :7])
    )


def test_rows_linear_equals_linear():
    """The multiply-and-sum form of a linear layer (compiled CPU decode step) is ``nn.Linear``."""
    from genforge.models.transformer import _rows_linear

    torch.manual_seed(0)
    layer = torch.nn.Linear(24, 10)
    x = torch.randn(3, 1, 24)
    torch.testing.assert_close(_rows_linear(x, layer), layer(x), rtol=1e-5, atol=1e-6)
    no_bias = torch.nn.Linear(24, 10, bias=False)
    torch.testing.assert_close(_rows_linear(x, no_bias), no_bias(x), rtol=1e-5, atol=1e-6)


def test_incremental_prefill_after_cached_prefix_matches_full_forward():
    """Several tokens appended to a cached prefix use the offset causal mask correctly."""
    from genforge.models.transformer import KVCache

    model = tiny_model(seed=5)
    x = torch.randint(0, TINY["vocab_size"], (2, 12), generator=torch.Generator().manual_seed(3))
    full = model(x)
    cache = KVCache(model.config, 2, model.config.block_size, "cpu", torch.float32)
    with torch.no_grad():
        first = model(x[:, :7], cache)
        second = model(x[:, 7:], cache)
    torch.testing.assert_close(torch.cat([first, second], dim=1), full, rtol=1e-5, atol=1e-5)


def test_top_k_filter_on_hand_made_logits():
    logits = torch.tensor([[1.0, 5.0, 3.0, 4.0, 2.0], [0.0, -1.0, 2.0, -3.0, 1.0]])
    out = top_k_filter(logits, 2)
    inf = float("-inf")
    assert torch.equal(out, torch.tensor([[inf, 5.0, inf, 4.0, inf], [inf, inf, 2.0, inf, 1.0]]))
    assert torch.equal(top_k_filter(logits, 10), logits)  # k beyond the vocabulary keeps everything


def test_top_p_filter_on_hand_made_logits():
    probs = torch.tensor([[0.05, 0.5, 0.15, 0.3]])
    logits = probs.log()
    inf = float("-inf")
    # 0.5 alone < 0.75, 0.5 + 0.3 reaches it: keep two
    kept = top_p_filter(logits, 0.75)
    assert torch.isinf(kept).tolist() == [[True, False, True, False]]
    # 0.85 needs the third most likely (0.15) as well
    assert torch.isinf(top_p_filter(logits, 0.85)).tolist() == [[True, False, False, False]]
    # tiny p keeps the most likely token only; p = 1 keeps all
    assert torch.isinf(top_p_filter(logits, 0.01)).tolist() == [[True, False, True, True]]
    assert not torch.isinf(top_p_filter(logits, 1.0)).any()
    torch.testing.assert_close(kept[0, 1], logits[0, 1])  # survivors are unchanged
    assert kept[0, 0] == inf


def test_repetition_penalty_lowers_repeated_token_logits():
    logits = torch.tensor([[2.0, -1.0, 0.5, -3.0]])
    seen = torch.tensor([[True, True, False, False]])
    out = apply_repetition_penalty(logits, seen, 2.0)
    assert torch.equal(out, torch.tensor([[1.0, -2.0, 0.5, -3.0]]))
    assert (out[seen] < logits[seen]).all()
    # in generation: a strong penalty makes greedy output repeat tokens less often
    model = tiny_model(seed=6)
    prompt = torch.tensor([[0]])
    plain = model.generate(prompt, 20, temperature=0.0)[0].tolist()
    penalised = model.generate(prompt, 20, temperature=0.0, repetition_penalty=5.0)[0].tolist()
    assert len(set(penalised)) > len(set(plain))


def test_sampling_is_reproducible_and_respects_filters():
    model = tiny_model(seed=7)
    prompt = torch.zeros(4, 3, dtype=torch.long)
    a = model.generate(prompt, 12, temperature=1.0, generator=torch.Generator().manual_seed(0))
    b = model.generate(prompt, 12, temperature=1.0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    c = model.generate(prompt, 12, temperature=1.0, generator=torch.Generator().manual_seed(1))
    assert not torch.equal(a, c)
    greedy = model.generate(prompt, 12, temperature=0.0)
    for kwargs in ({"top_k": 1}, {"top_p": 1e-6}):
        assert torch.equal(model.generate(prompt, 12, temperature=1.3, **kwargs), greedy)
    with pytest.raises(GenforgeError, match="temperature"):
        model.generate(prompt, 2, temperature=-1.0)
    assert model.training is False


def test_tiny_gpt_learns_text_below_unigram_entropy():
    """A small model trained for a few hundred steps predicts characters better than their frequencies."""
    from genforge.tokenizers import CharTokenizer

    text = (
        "the quick brown fox jumps over the lazy dog. "
        "a stitch in time saves nine. all that glitters is not gold. "
        "to be or not to be, that is the question. "
    ) * 12
    tok = CharTokenizer.fit(text)
    data = torch.tensor(tok.encode(text))
    counts = torch.tensor(list(Counter(data.tolist()).values()), dtype=torch.float)
    freqs = counts / counts.sum()
    unigram_entropy = float(-(freqs * freqs.log()).sum())  # nats per character

    torch.manual_seed(0)
    block = 24
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=block, n_layer=2, n_head=2, n_embd=48))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(150):
        starts = torch.randint(0, len(data) - block - 1, (16,), generator=gen)
        x = torch.stack([data[s : s + block] for s in starts])
        y = torch.stack([data[s + 1 : s + block + 1] for s in starts])
        loss = model.training_loss((x, y))["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        x = data[: len(data) - 1].unfold(0, block, block)[:40]
        y = data[1:].unfold(0, block, block)[:40]
        final = float(model.training_loss((x, y))["loss"])
    assert math.isfinite(final)
    assert final < 0.6 * unigram_entropy, (final, unigram_entropy)
    # and its greedy continuation of a seen phrase is the text itself
    prompt = torch.tensor([tok.encode("to be or not ")])
    continuation = tok.decode(model.generate(prompt, 6, temperature=0.0)[0, -6:])
    assert continuation == "to be,"


def test_training_loss_accepts_a_bare_sequence_batch():
    model = tiny_model(seed=8)
    seq = torch.randint(0, TINY["vocab_size"], (3, 9))
    a = model.training_loss(seq)["loss"]
    b = model.training_loss((seq[:, :-1], seq[:, 1:]))["loss"]
    torch.testing.assert_close(a, b)


def test_checkpoint_round_trip_keeps_tied_embeddings(tmp_path):
    import genforge

    model = tiny_model(seed=9)
    genforge.save(model, tmp_path / "gpt")
    again = genforge.load(tmp_path / "gpt")
    assert isinstance(again, GPT) and again.config == model.config
    assert again.lm_head.weight is again.wte.weight
    prompt = torch.tensor([[1, 2, 3]])
    expected = model.generate(prompt, 10, temperature=0.0)
    assert torch.equal(again.generate(prompt, 10, temperature=0.0), expected)


def test_compile_decode_failure_falls_back_to_eager(monkeypatch):
    """Where torch.compile cannot work (no compiler, unsupported backend) generation stays eager."""

    def broken_compile(*args, **kwargs):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(torch, "compile", broken_compile)
    model = tiny_model(seed=10)
    prompt = torch.tensor([[4, 5]])
    expected = model.generate(prompt, 6, temperature=0.0)
    with pytest.warns(UserWarning, match="using eager"):
        assert model.compile_decode() is False
    assert model._compiled_step is None
    assert torch.equal(model.generate(prompt, 6, temperature=0.0), expected)
