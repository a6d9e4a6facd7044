"""A decoder-only GPT (nanoGPT-shaped) with fast KV-cache generation.

One readable file, in the spirit of nanoGPT's ``model.py``:

- ``GPTConfig`` / ``GPT``: token + learned position embeddings, pre-LayerNorm blocks with a fused
  query/key/value projection, attention through ``torch.nn.functional.scaled_dot_product_attention``
  (flash / memory-efficient kernels on GPU), a GELU MLP, and a language-model head tied to the token
  embedding. ``training_loss((x, y))`` is next-token cross-entropy.
- ``GPT.generate``: autoregressive decoding with temperature, top-k, top-p (nucleus) and CTRL-style
  repetition penalty. With ``use_cache=True`` keys and values live in a cache allocated once for the
  whole generation (``KVCache``); each step writes one position in place, so nothing is concatenated
  or re-allocated per token. ``temperature == 0`` means greedy decoding. On a CPU, in float32, with
  :mod:`genforge.kernels` available, uncompiled decoding runs the single-token step below eagerly with
  the native linear and attention kernels (1.8-1.9x HF ``generate`` at batch 1 and 8).
- Positions: learned absolute embeddings by default; ``GPTConfig(position="rope")`` uses rotary
  embeddings (Su et al. 2021) on queries and keys instead, so attention depends on relative offsets
  (the core analogue of the Music Transformer's relative attention); ``"learned+rope"`` uses both.
- Context longer than ``block_size``: like nanoGPT the model only ever sees the last ``block_size``
  tokens. Position embeddings are absolute, so a cache cannot simply slide (every cached key was
  computed at a position that shifts). Once the sequence exceeds ``block_size`` the cached path
  therefore falls back to recomputing the cropped window each step; this gives exactly the tokens
  of the uncached path, at uncached speed for those steps.
- ``GPT.compile_decode()`` optionally wraps the single-token decode step in ``torch.compile``
  (static shapes: one graph per batch size, reused for every cache length). On CPU this removes
  most per-step Python overhead, and the step's linear layers are written as one multiply-and-sum
  per batch row (``_rows_linear``) that inductor turns into one register-blocked loop streaming
  each weight row once for all rows of the batch: for a handful of rows that runs faster than the
  BLAS call ``F.linear`` makes (MKL's small-M sgemm on the AMD EPYC machines we use; MKL's packed
  sgemm and oneDNN's prepacked linear measured slower inside the step); from
  ``NATIVE_LINEAR_MIN_BATCH`` sequences on, the same loop runs in :mod:`genforge.kernels` with the
  next weight rows prefetched (inductor's loop does not prefetch). Attention of the one new
  query runs on the filled cache slots only, in one native call for all heads
  (:func:`genforge.kernels.attend_one_query`); without the native kernels, two batched matmuls
  (``attend_one_query``, also the eager cached path) for a few sequences and inductor-generated
  loops over all heads from ``LOOP_ATTENTION_MIN_BATCH`` on. If compilation fails the eager step
  is used.

The logit filters (``top_k_filter``, ``top_p_filter``, ``apply_repetition_penalty``) are plain
functions so they can be tested, and reused, on their own.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genforge import kernels
from genforge.errors import ConfigError, GenforgeError
from genforge.registry import register_model

POSITIONS = ("learned", "rope", "learned+rope")


@dataclass
class GPTConfig:
    """Size of a GPT. Defaults are a small character model (nanoGPT's CPU shakespeare_char size)."""

    vocab_size: int = 65
    block_size: int = 64  # longest context the model attends to
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True  # biases in Linear and LayerNorm layers (GPT-2 has them)
    position: str = "learned"  # "learned" (absolute table) | "rope" (rotary) | "learned+rope"
    rope_base: float = 10000.0

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"GPTConfig.{name} = {getattr(self, name)}; expected a positive integer")
        if self.n_embd % self.n_head:
            raise ConfigError(f"GPTConfig.n_embd = {self.n_embd} is not divisible by n_head = {self.n_head}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"GPTConfig.dropout = {self.dropout}; expected a value in [0, 1)")
        if self.position not in POSITIONS:
            raise ConfigError(
                f"GPTConfig.position = {self.position!r}; expected one of {', '.join(POSITIONS)}"
            )
        if "rope" in self.position and (self.n_embd // self.n_head) % 2:
            raise ConfigError(
                f"GPTConfig: rotary positions need an even head size; got {self.n_embd // self.n_head}"
            )

    @property
    def learned_positions(self) -> bool:
        return "learned" in self.position

    @property
    def rope(self) -> bool:
        return "rope" in self.position


# --------------------------------------------------------------------------------------------------
# Logit filters for sampling
# --------------------------------------------------------------------------------------------------


def top_k_filter(logits: Tensor, k: int) -> Tensor:
    """Keep the ``k`` largest logits of each row; the rest become ``-inf`` (ties at the k-th value stay)."""
    if k <= 0:
        raise GenforgeError(f"top_k = {k}; expected a positive integer")
    k = min(k, logits.size(-1))
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: Tensor, p: float) -> Tensor:
    """Nucleus filter: keep the smallest set of most likely tokens whose probability mass reaches ``p``.

    A token is kept when the mass of the tokens ranked above it is still below ``p``; the most
    likely token is always kept.
    """
    if not 0.0 < p <= 1.0:
        raise GenforgeError(f"top_p = {p}; expected a value in (0, 1]")
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(sorted_logits, dim=-1)
    mass_before = torch.cumsum(probs, dim=-1) - probs
    remove_sorted = mass_before >= p
    remove_sorted[..., 0] = False
    remove = torch.zeros_like(remove_sorted).scatter(-1, order, remove_sorted)
    return logits.masked_fill(remove, float("-inf"))


def apply_repetition_penalty(logits: Tensor, seen: Tensor, penalty: float) -> Tensor:
    """CTRL-style repetition penalty (Keskar et al. 2019), as in Hugging Face's processor.

    For every token already in the sequence (``seen``: bool ``[B, V]``), a positive logit is divided
    by ``penalty`` and a negative one multiplied by it, so ``penalty > 1`` always makes repeats less
    likely.
    """
    if penalty <= 0:
        raise GenforgeError(f"repetition_penalty = {penalty}; expected a positive number")
    penalised = torch.where(logits > 0, logits / penalty, logits * penalty)
    return torch.where(seen, penalised, logits)


# --------------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------------


def rope_tables(head_dim: int, length: int, base: float = 10000.0) -> tuple[Tensor, Tensor]:
    """Rotary tables ``cos``, ``sin`` of shape ``[length, head_dim // 2]`` (position x frequency)."""
    inv_freq = 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    angles = torch.arange(length, dtype=torch.float64)[:, None] * inv_freq[None]
    return angles.cos().float(), angles.sin().float()


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate the two halves of each head (``x``: ``[B, nh, T, hd]``) by the angles of ``cos``/``sin``
    (``[T, hd/2]``), GPT-NeoX style: (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin)."""
    x1, x2 = x.chunk(2, dim=-1)
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)


class KVCache:
    """Keys and values of every layer, allocated once: ``k[layer]`` is ``[B, n_head, max_len, head_dim]``.

    One tensor per layer (not one big tensor sliced per layer), so a compiled step mutates each
    buffer in place instead of copying a shared base. ``length`` is the number of positions filled.
    """

    def __init__(self, config: GPTConfig, batch: int, max_len: int, device, dtype) -> None:
        shape = (batch, config.n_head, max_len, config.n_embd // config.n_head)
        self.k = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layer)]
        self.v = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layer)]
        self.max_len = max_len
        self.length = 0
        # cache slot indices: the compiled decode step attends to slots <= its position through a
        # mask, so every step has the same shapes (one graph, no per-length recompiles)
        self.slots = torch.arange(max_len, device=device)


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with one fused qkv projection and SDPA."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.head_dim = config.n_embd // config.n_head
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = config.dropout
        self.resid_dropout = nn.Dropout(config.dropout)

    def _heads(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        B, T, C = x.shape
        qkv = self.c_attn(x).view(B, T, 3, self.n_head, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [B, nh, T, hd]
        return q, k, v

    def forward(
        self,
        x: Tensor,
        cache: KVCache | None = None,
        layer: int = 0,
        rope: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor:
        """Causal attention over ``x``; with ``cache`` the new keys/values are stored at
        positions ``cache.length ...`` and the queries attend to everything cached so far.
        ``rope``: rotary ``(cos, sin)`` for the positions of ``x`` (rotary models only)."""
        B, T, C = x.shape
        q, k, v = self._heads(x)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        if cache is None:
            p = self.dropout if self.training else 0.0
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        else:
            start, end = cache.length, cache.length + T
            cache.k[layer][:, :, start:end] = k
            cache.v[layer][:, :, start:end] = v
            keys, values = cache.k[layer][:, :, :end], cache.v[layer][:, :, :end]
            if T == 1:  # one new query sees every cached position
                y = attend_one_query(q, keys, values)
            elif start == 0:  # a fresh prompt is plainly causal
                y = F.scaled_dot_product_attention(q, keys, values, is_causal=True)
            else:  # several new tokens after a cached prefix: causal mask offset by `start`
                mask = torch.ones(T, end, dtype=torch.bool, device=x.device).tril(diagonal=start)
                y = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
        y = y.transpose(1, 2).reshape(B, T, C)
        return self.resid_dropout(self.c_proj(y))


def _rows_linear(x: Tensor, linear: nn.Linear) -> Tensor:
    """``linear(x)`` for one position per sequence (``x``: ``[B, 1, in]``), as multiply-and-sum.

    Only for the *compiled* CPU decode step: one reduction per batch row over the same weight, which
    inductor fuses into one loop that loads each weight vector once and keeps ``B`` accumulators
    in registers (a register-blocked matrix-vector product), streaming the weight rows in order.
    For a handful of rows that beats the BLAS call ``F.linear`` makes (MKL's small-M sgemm on the
    AMD EPYC machines we use). Eagerly it would materialise ``[out, in]`` products, so
    ``_decode_step`` uses ``F.linear`` unless ``compile_decode`` switched this on. Sums run in a
    different order than BLAS's, so results differ by float rounding only (~1e-6).
    """
    rows = x.reshape(-1, x.size(-1)).contiguous()  # [B, in], each row contiguous (vector loads)
    # a fusion barrier: inductor stores an as_strided input instead of inlining it, so the
    # LayerNorm / GELU that produced `rows` runs once, not once per weight row (that was 10x slower)
    rows = torch.as_strided(rows, rows.shape, rows.stride())
    y = torch.stack([(linear.weight * rows[b]).sum(-1) for b in range(rows.size(0))])  # [B, out]
    if linear.bias is not None:
        y = y + linear.bias
    return y.view(x.size(0), 1, -1)


# From this many sequences on, the compiled CPU step's linear layers run in the native kernel; for
# fewer, inductor's fused loop (LayerNorm, linear and GELU in one kernel) wins over separate calls
# (step A/B in docs/results/core.md, generation round 5: batch 1 0.88x, 2 0.97x, 4 1.24x, 8 1.35x).
NATIVE_LINEAR_MIN_BATCH = 4
# Up to this many sequences: above it the kernel streams the weights once per eight rows, and MKL's
# GEMM, now large enough to run near the FMA rate, catches up (one layer's linears, cold weights:
# MKL / native 1.99 at 8 rows, 1.16 at 32, 0.96 at 64).
NATIVE_LINEAR_MAX_BATCH = 32


def _native_rows_linear(x: Tensor, linear: nn.Linear) -> Tensor:
    """``linear(x)`` for one position per sequence through :func:`genforge.kernels.rows_linear`: the
    same weight-streaming loop as ``_rows_linear``, plus prefetching of the next weight rows, which
    inductor's loop lacks (the weights are cold at every step: ~42 MB for the nanoGPT-size model)."""
    return kernels.rows_linear(x.reshape(-1, x.size(-1)), linear.weight, linear.bias).view(x.size(0), 1, -1)


def attend_one_query(q: Tensor, keys: Tensor, values: Tensor) -> Tensor:
    """Attention of one query per head (``q``: ``[B, nh, 1, hd]``) to ``keys``/``values``
    (``[B, nh, L, hd]``): softmax(q k^T / sqrt(hd)) v as two batched matrix products.

    For a single query this beats ``scaled_dot_product_attention`` on CPU, whose flash kernel has a
    large fixed cost per call at batch 1 and which falls back to its unfused math path (extra
    copies) at batch 8; measured 1.3-1.6x faster per call on our decode shapes.
    """
    scores = torch.matmul(q, keys.transpose(-1, -2)).mul_(q.size(-1) ** -0.5)
    return torch.matmul(torch.softmax(scores, dim=-1), values)


def _one_query_loops(q: Tensor, keys: Tensor, values: Tensor) -> Tensor:
    """``attend_one_query`` as reductions, for inductor to generate as loops over the slots."""
    scores = (q * keys).sum(-1, keepdim=True) * (q.size(-1) ** -0.5)  # [B, nh, L, 1]
    return (torch.softmax(scores, dim=2) * values).sum(2, keepdim=True)


_compiled_one_query = None

# From this many sequences on, the compiled CPU step attends through inductor-generated loops
# (one pass over all heads) instead of two batched matmuls, whose per-head calls dominate at batch
# 8 (docs/results/core.md, generation round 4). Below it the extra compiled call costs more.
LOOP_ATTENTION_MIN_BATCH = 4


def _attend_loops(q: Tensor, keys: Tensor, values: Tensor) -> Tensor:
    """``attend_one_query`` compiled once with the number of slots dynamic (one graph for every
    filled length; the head dimension and batch stay static)."""
    global _compiled_one_query
    if _compiled_one_query is None:
        _compiled_one_query = torch.compile(_one_query_loops)
    torch._dynamo.mark_dynamic(keys, 2)
    torch._dynamo.mark_dynamic(values, 2)
    return _compiled_one_query(q, keys, values)


@torch.library.custom_op("genforge::attend_filled_slots", mutates_args=())
def attend_filled_slots(q: Tensor, k: Tensor, v: Tensor, pos_t: Tensor) -> Tensor:
    """Attention of one query per head (``q``: ``[B, nh, 1, hd]``) to cache slots ``0..pos_t``.

    An opaque op for the compiled CPU decode step: inside it the filled slots are a plain slice,
    so the work follows the filled length instead of the whole preallocated cache that inductor's
    masked form would read. (Reading ``pos_t`` is free on a CPU; a GPU keeps the masked form,
    which needs no host sync.) From ``LOOP_ATTENTION_MIN_BATCH`` sequences on, the slice goes
    through ``_attend_loops``; below, through ``attend_one_query``.
    """
    end = int(pos_t.reshape(-1)[0]) + 1
    keys, values = k[:, :, :end], v[:, :, :end]
    if q.size(0) >= LOOP_ATTENTION_MIN_BATCH and end >= 2:
        return _attend_loops(q, keys, values)
    return attend_one_query(q, keys, values)


@attend_filled_slots.register_fake
def _(q: Tensor, k: Tensor, v: Tensor, pos_t: Tensor) -> Tensor:
    return q.new_empty(q.shape)


class MLP(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    """Pre-LayerNorm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(
        self,
        x: Tensor,
        cache: KVCache | None = None,
        layer: int = 0,
        rope: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor:
        x = x + self.attn(self.ln_1(x), cache, layer, rope)
        return x + self.mlp(self.ln_2(x))


@register_model("gpt")
class GPT(nn.Module):
    """Decoder-only transformer language model over integer tokens ``[B, T]``."""

    config_class = GPTConfig
    family = "transformer"

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        # learned absolute positions (default); a rotary-only model has no table (wpe is None)
        self.wpe = nn.Embedding(config.block_size, config.n_embd) if config.learned_positions else None
        if config.rope:  # not saved with the weights: rebuilt from the config
            cos, sin = rope_tables(config.n_embd // config.n_head, config.block_size, config.rope_base)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied input/output embedding
        self.apply(self._init_weights)
        # GPT-2: scale the residual projections by 1/sqrt(2 * n_layer) so the residual stream's
        # variance does not grow with depth
        for name, param in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(param, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))
        self._compiled_step = None
        self._cpu_step = False  # compiled CPU decode step: _rows_linear, attend_filled_slots
        self._native_linear = False  # ... with genforge.kernels.rows_linear for its linear layers
        self._native_attention = False  # ... and genforge.kernels.attend_one_query for attention

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_parameters(self, non_embedding: bool = True) -> int:
        """Parameter count; by default without the position embedding (as nanoGPT reports it)."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.wpe.weight.numel() if non_embedding and self.wpe is not None else n

    # ---------------------------------------------------------------------------------- training

    def forward(self, idx: Tensor, cache: KVCache | None = None, last_only: bool = False) -> Tensor:
        """Logits ``[B, T, vocab]`` for tokens ``idx`` (``[B, 1, vocab]`` with ``last_only``).

        With ``cache`` the tokens continue the cached sequence (positions start at
        ``cache.length``), and the cache is advanced by ``T``.
        """
        B, T = idx.shape
        start = cache.length if cache is not None else 0
        if start + T > self.config.block_size:
            raise GenforgeError(
                f"sequence of {start + T} tokens exceeds the model's block_size = {self.config.block_size}"
            )
        # positions start..start+T-1: a slice of the position table (no per-step arange/gather)
        x = self.wte(idx)
        if self.wpe is not None:
            x = x + self.wpe.weight[start : start + T]
        x = self.drop(x)
        rope = (
            (self.rope_cos[start : start + T], self.rope_sin[start : start + T]) if self.config.rope else None
        )
        for i, block in enumerate(self.blocks):
            x = block(x, cache, i, rope)
        if cache is not None:
            cache.length += T
        if last_only:
            x = x[:, -1:]
        return self.lm_head(self.ln_f(x))

    def training_loss(self, batch) -> dict[str, Tensor]:
        """Next-token cross-entropy; ``batch`` is ``(x, y)`` with ``y`` the targets (``-1`` = ignore)."""
        if isinstance(batch, (tuple, list)) and len(batch) == 2:
            x, y = batch
        elif isinstance(batch, Tensor):  # a bare sequence: predict each token from the ones before
            x, y = batch[:, :-1], batch[:, 1:]
        else:
            raise GenforgeError("GPT.training_loss: expected a batch (x, y) of token tensors or a Tensor")
        logits = self(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1), ignore_index=-1)
        return {"loss": loss}

    # -------------------------------------------------------------------------------- generation

    def compile_decode(self, batch_sizes: tuple[int, ...] = (1,), **compile_kwargs) -> bool:
        """Compile the one-token decode step with ``torch.compile``; returns whether it worked.

        The step has static shapes (the whole preallocated cache, a mask for the filled slots), so
        it is compiled with ``dynamic=False``: one specialised graph per batch size, reused for
        every step and every generation. Static shapes matter on CPU: inductor's loops for a
        symbolic batch size ran ~50x slower than the specialised ones here; on a GPU they are what
        CUDA graphs need (``mode="reduce-overhead"`` through ``compile_kwargs``). The graphs for
        ``batch_sizes`` are built here (minutes on a small CPU; inductor caches them on disk), any
        other batch size compiles on first use. Failure (e.g. no C++ compiler) leaves the eager
        step in place.
        """
        device, dtype = self.wte.weight.device, self.wte.weight.dtype
        self._cpu_step = device.type == "cpu"
        self._native_linear = self._cpu_step and dtype == torch.float32 and kernels.has_rows_linear()
        self._native_attention = self._cpu_step and dtype == torch.float32 and kernels.available()
        try:
            compile_kwargs.setdefault("dynamic", False)
            step = torch.compile(self._decode_step, **compile_kwargs)
            with torch.inference_mode():  # as in generate, so the warm-up graph is the one reused
                for batch in batch_sizes:
                    cache = KVCache(self.config, batch, self.config.block_size, device, dtype)
                    token = torch.zeros(batch, 1, dtype=torch.long, device=device)
                    for pos in (0, 1):  # a second call: checks that no guard depends on the step
                        step(token, cache, torch.full((1,), pos, dtype=torch.long, device=device))
        except Exception as exc:  # noqa: BLE001 - any backend failure means "stay eager"
            warnings.warn(f"torch.compile of the decode step failed, using eager: {exc}", stacklevel=2)
            self._compiled_step = None
            self._cpu_step = self._native_linear = self._native_attention = False
            return False
        self._compiled_step = step
        return True

    def _native_eager_step(self) -> bool:
        """Whether uncompiled CPU float32 decoding runs ``_decode_step`` with the native kernels
        (:mod:`genforge.kernels`) instead of the module's forward: the same tokens, ~1.7x faster
        (docs/results/core.md, generation round 5)."""
        weight = self.wte.weight
        if weight.device.type != "cpu" or weight.dtype != torch.float32 or not kernels.available():
            return False
        self._native_attention, self._native_linear = True, kernels.has_rows_linear()
        return True

    def _decode_step(self, idx: Tensor, cache: KVCache, pos_t: Tensor) -> Tensor:
        """One token per sequence (``idx``: ``[B, 1]``) at position ``pos_t`` (a 1-element tensor):
        write its key/value into that cache slot and attend to slots ``<= pos_t`` (a mask over the
        whole preallocated cache, so the shapes never change from step to step).

        The function ``compile_decode`` compiles; callers pass fresh, unsliced tensors so that no
        guard depends on the step. Returns logits ``[B, vocab]``.
        """
        batch, compiled = idx.size(0), torch.compiler.is_compiling()  # eagerly no fused loop to lose
        if (
            self._native_linear
            and batch <= NATIVE_LINEAR_MAX_BATCH
            and (batch >= NATIVE_LINEAR_MIN_BATCH or not compiled)
        ):
            linear = _native_rows_linear
        else:
            linear = _rows_linear if self._cpu_step else (lambda h, layer: layer(h))
        x = self.wte(idx)
        if self.wpe is not None:
            x = x + self.wpe(pos_t)
        rope = (self.rope_cos[pos_t], self.rope_sin[pos_t]) if self.config.rope else None  # [1, hd/2]
        masked = not (self._native_attention or self._cpu_step)  # the GPU form: SDPA over the whole cache
        visible = (cache.slots <= pos_t)[None] if masked else None  # [1, max_len]: filled slots, this one too
        B, nh, hd = idx.size(0), self.config.n_head, self.config.n_embd // self.config.n_head
        for i, block in enumerate(self.blocks):
            attn, mlp = block.attn, block.mlp
            qkv = linear(block.ln_1(x), attn.c_attn).view(B, 1, 3, nh, hd)
            q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [B, nh, 1, hd]
            if rope is not None:
                q, k = apply_rope(q, *rope), apply_rope(k, *rope)
            cache.k[i][:, :, pos_t] = k  # index_put_: an in-place scatter once compiled
            cache.v[i][:, :, pos_t] = v
            if self._native_attention:
                y = kernels.attend_one_query(q, cache.k[i], cache.v[i], pos_t)
            elif self._cpu_step:
                y = attend_filled_slots(q, cache.k[i], cache.v[i], pos_t)
            else:
                y = F.scaled_dot_product_attention(q, cache.k[i], cache.v[i], attn_mask=visible)
            x = x + linear(y.transpose(1, 2).reshape(B, 1, -1), attn.c_proj)
            x = x + linear(mlp.gelu(linear(block.ln_2(x), mlp.c_fc)), mlp.c_proj)
        return linear(self.ln_f(x), self.lm_head)[:, -1]

    @torch.inference_mode()
    def generate(
        self,
        idx: Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        repetition_penalty: float = 1.0,
        use_cache: bool = True,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Continue ``idx`` (``[B, T]`` token ids) by ``max_new_tokens`` tokens; returns ``[B, T + new]``.

        ``temperature == 0`` is greedy (argmax). Otherwise logits are divided by ``temperature``,
        optionally filtered by ``top_k`` then ``top_p``, and sampled (``generator`` for
        reproducibility). ``repetition_penalty`` (> 1 discourages repeats) applies CTRL-style to
        every token already in the sequence, prompt included. ``use_cache=False`` recomputes the
        whole (cropped) context every step; both paths give the same tokens.
        """
        if idx.dim() != 2 or idx.size(1) < 1:
            raise GenforgeError(
                f"generate: expected idx of shape [batch, length >= 1], got {tuple(idx.shape)}"
            )
        if temperature < 0:
            raise GenforgeError(f"generate: temperature = {temperature}; expected >= 0")
        was_training = self.training
        self.eval()
        B, T0 = idx.shape
        block = self.config.block_size
        out = torch.empty(B, T0 + max_new_tokens, dtype=torch.long, device=idx.device)
        out[:, :T0] = idx
        seen = None
        if repetition_penalty != 1.0:
            seen = torch.zeros(B, self.config.vocab_size, dtype=torch.bool, device=idx.device)
            seen.scatter_(1, idx, True)
        cache = None
        if use_cache and T0 <= block:
            cache = KVCache(self.config, B, block, idx.device, self.wte.weight.dtype)
        step = self._compiled_step
        if step is None and cache is not None and self._native_eager_step():
            step = self._decode_step
        position = torch.zeros(1, dtype=torch.long, device=idx.device)  # filled in place per step
        prev = idx[:, -1:]

        for t in range(T0, T0 + max_new_tokens):
            if cache is not None and t <= block:
                if cache.length == 0:  # prefill with the prompt
                    logits = self(out[:, :t], cache, last_only=True)[:, -1]
                elif step is not None:
                    position.fill_(t - 1)
                    logits = step(prev, cache, position)
                    cache.length = t
                else:
                    logits = self(prev, cache)[:, -1]
            else:  # no cache, or the context outgrew block_size: recompute the cropped window
                logits = self(out[:, max(0, t - block) : t], last_only=True)[:, -1]
            nxt = self._choose(logits, temperature, top_k, top_p, repetition_penalty, seen, generator)
            out[:, t] = nxt
            prev = nxt.view(B, 1)
            if seen is not None:
                seen.scatter_(1, prev, True)

        self.train(was_training)
        return out

    @staticmethod
    def _choose(
        logits: Tensor,
        temperature: float,
        top_k: int | None,
        top_p: float | None,
        repetition_penalty: float,
        seen: Tensor | None,
        generator: torch.Generator | None,
    ) -> Tensor:
        """Next token ``[B]`` from logits ``[B, vocab]`` under the sampling settings."""
        logits = logits.float()
        if seen is not None:
            logits = apply_repetition_penalty(logits, seen, repetition_penalty)
        if temperature == 0:
            return logits.argmax(dim=-1)
        logits = logits / temperature
        if top_k is not None:
            logits = top_k_filter(logits, top_k)
        if top_p is not None and top_p < 1.0:
            logits = top_p_filter(logits, top_p)
        probs = torch.softmax(logits, dim=-1)
        return torch.multinomial(probs, 1, generator=generator).squeeze(1)
