"""The core GPT's opt-in rotary positions (``GPTConfig(position="rope")``, which the content suite's
``MusicGenerator`` uses): cached decoding equals uncached, the decode step equals it too, attention
depends on relative offsets only, and the default configuration is untouched (test_transformer.py
covers its numerics)."""

from __future__ import annotations

import pytest
import torch

from genforge.errors import GenforgeError
from genforge.models.transformer import GPT, GPTConfig, KVCache, apply_rope, rope_tables

TINY = dict(vocab_size=11, block_size=16, n_layer=2, n_head=2, n_embd=16)


def tiny_model(position: str, seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    model = GPT(GPTConfig(**TINY, position=position)).eval()
    with torch.no_grad():  # large weights: spread-out logits, so argmax ties cannot hide bugs
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.3)
    return model


def test_config_and_parameters():
    with pytest.raises(GenforgeError, match="position"):
        GPTConfig(position="alibi")
    with pytest.raises(GenforgeError, match="even head size"):
        GPTConfig(n_embd=6, n_head=2, position="rope")
    assert GPTConfig().position == "learned" and GPT(GPTConfig(**TINY)).wpe is not None
    rope = GPT(GPTConfig(**TINY, position="rope"))
    assert rope.wpe is None and "rope_cos" not in rope.state_dict()  # tables are rebuilt, not saved
    assert GPT(GPTConfig(**TINY, position="learned+rope")).wpe is not None


@pytest.mark.parametrize("position", ["rope", "learned+rope"])
@pytest.mark.parametrize("batch", [1, 3])
def test_cached_equals_uncached_under_rope(position, batch):
    model = tiny_model(position, seed=batch)
    prompt = torch.randint(0, 11, (batch, 5), generator=torch.Generator().manual_seed(1))
    # 30 new tokens: past block_size (16), so the crop fallback is covered too
    cached = model.generate(prompt, 30, temperature=0.0, use_cache=True)
    uncached = model.generate(prompt, 30, temperature=0.0, use_cache=False)
    assert torch.equal(cached, uncached)
    assert len(set(cached[:, 5:].flatten().tolist())) > 1  # not a degenerate constant sequence
    model._compiled_step = model._decode_step  # the step compile_decode compiles, run eagerly
    for cpu_step in (False, True):
        model._cpu_step = cpu_step
        assert torch.equal(model.generate(prompt, 30, temperature=0.0), uncached)


def test_prefix_cache_then_block_matches_full_forward_under_rope():
    model = tiny_model("rope", seed=5)
    x = torch.randint(0, 11, (2, 12), generator=torch.Generator().manual_seed(3))
    cache = KVCache(model.config, 2, model.config.block_size, "cpu", torch.float32)
    with torch.no_grad():
        parts = torch.cat([model(x[:, :7], cache), model(x[:, 7:], cache)], dim=1)
    torch.testing.assert_close(parts, model(x), rtol=1e-5, atol=1e-5)


def test_rope_scores_depend_on_relative_offset_only():
    cos, sin = rope_tables(8, 32)
    q, k = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)

    def score(i: int, j: int) -> float:
        qi = apply_rope(q, cos[i : i + 1], sin[i : i + 1])
        kj = apply_rope(k, cos[j : j + 1], sin[j : j + 1])
        return float((qi * kj).sum())

    assert score(7, 3) == pytest.approx(score(20, 16), rel=1e-5)
    assert score(7, 3) != pytest.approx(score(7, 5), rel=1e-3)
