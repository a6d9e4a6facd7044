"""``TextGenerator``: a house-style text model — the core GPT trained by the core Trainer on the user's
documents, with a character or BPE tokenizer fitted on them and saved beside the model.

Training follows nanoGPT's recipe at nanoGPT's CPU size by default (4 layers x 4 heads x 128, context 64,
batch 12, AdamW betas (0.9, 0.99), weight decay 0.1 on matrices, gradient clipping 1.0, 100 warm-up
steps then cosine decay, peak lr 2e-3 as ``benchmarks/shakespeare_char.py``), except that the hidden
matrices are trained by Muon (``optimizer="muon"``, lr ``muon_lr`` 0.02, as modded-nanogpt; embeddings,
tied head and norms stay with AdamW): at the CPU budget it lowers tiny Shakespeare's validation loss
from 1.817 to about 1.60 (docs/results/content.md). ``optimizer="adamw"`` is nanoGPT's recipe. The
last ``val_fraction`` of the corpus is held out, as nanoGPT splits tiny Shakespeare. With ``out_dir``
the Trainer checkpoints there and a second ``fit`` with the same arguments resumes where it stopped.

Generation is the core ``GPT.generate`` (KV cache, temperature / top-k / top-p / repetition penalty);
``stream`` calls it a few tokens at a time and yields the new text as it comes, ``generate`` stops at
the first stop string.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from genforge.errors import DataError, GenforgeError
from genforge.estimator import Example, SuiteEstimator
from genforge.tokenizers import BPETokenizer, CharTokenizer

TOKENIZER_FILE = "tokenizer.json"
DOC_SEPARATOR = "\n\n"


def _as_documents(X: Any) -> list[str]:
    if isinstance(X, str):
        return [X]
    if isinstance(X, Sequence) and X and all(isinstance(d, str) for d in X):
        return list(X)
    raise DataError("TextGenerator.fit: expected a string or a non-empty list of strings (documents)")


class TextGenerator(SuiteEstimator):
    """Character- or BPE-level GPT language model trained on the user's documents."""

    def __init__(
        self,
        tokenizer: str = "char",
        bpe_vocab_size: int = 1000,
        block_size: int = 64,
        n_layer: int = 4,
        n_head: int = 4,
        n_embd: int = 128,
        dropout: float = 0.0,
        max_steps: int = 2000,
        batch_size: int = 12,
        lr: float = 2e-3,
        warmup_steps: int = 100,
        weight_decay: float = 0.1,
        optimizer: str = "muon",
        muon_lr: float = 0.02,
        lr_schedule: str = "cosine",
        val_fraction: float = 0.1,
        seed: int = 1337,
        progress: bool = True,
        device: str = "auto",
    ) -> None:
        self.tokenizer = tokenizer
        self.bpe_vocab_size = bpe_vocab_size
        self.block_size = block_size
        self.n_layer = n_layer
        self.n_head = n_head
        self.n_embd = n_embd
        self.dropout = dropout
        self.max_steps = max_steps
        self.batch_size = batch_size
        self.lr = lr
        self.warmup_steps = warmup_steps
        self.weight_decay = weight_decay
        self.optimizer = optimizer
        self.muon_lr = muon_lr
        self.lr_schedule = lr_schedule
        self.val_fraction = val_fraction
        self.seed = seed
        self.progress = progress
        self.device = device

    @classmethod
    def example(cls) -> Example:
        from genforge.content.text.data import embedded_text

        text = embedded_text(12_000)
        return Example(
            params=dict(
                n_layer=1,
                n_head=2,
                n_embd=32,
                block_size=32,
                max_steps=20,
                batch_size=8,
                progress=False,
                device="cpu",
            ),
            fit_args=(text,),
            probe=lambda est: est.score(text[:1500])["loss_per_token"],
        )

    # ------------------------------------------------------------------ tokenizer
    def _fit_tokenizer(self, docs: list[str], out_dir: Path | None) -> Any:
        saved = out_dir / TOKENIZER_FILE if out_dir is not None else None
        if saved is not None and saved.is_file():  # resuming: the ids must mean what they meant
            return _load_tokenizer(self.tokenizer, saved)
        if self.tokenizer == "char":
            tok = CharTokenizer.fit(DOC_SEPARATOR.join(docs))
        elif self.tokenizer == "bpe":
            tok = BPETokenizer.train(docs, vocab_size=self.bpe_vocab_size)
        else:
            raise GenforgeError(f"TextGenerator.tokenizer = {self.tokenizer!r}; expected 'char' or 'bpe'")
        if saved is not None:
            tok.save(saved)
        return tok

    def encode(self, text: str) -> torch.Tensor:
        """Token ids of ``text`` as a 1-D long tensor (a character never seen is a ``DataError``)."""
        self._check_fitted()
        return torch.tensor(self.tokenizer_.encode(text), dtype=torch.long)

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        self._check_fitted()
        return self.tokenizer_.decode([int(i) for i in ids])

    # ------------------------------------------------------------------ training
    def fit(
        self, X: str | Sequence[str], y: None = None, out_dir: str | os.PathLike[str] | None = None
    ) -> TextGenerator:
        """Train on documents ``X`` (one string or a list); ``out_dir`` makes the run resumable."""
        from genforge.content.gpt import train_gpt

        if not 0.0 < self.val_fraction < 0.5:
            raise GenforgeError(
                f"TextGenerator.val_fraction = {self.val_fraction}; expected a value in (0, 0.5)"
            )
        docs = _as_documents(X)
        ckpt = Path(out_dir) if out_dir is not None else None
        if ckpt is not None:
            ckpt.mkdir(parents=True, exist_ok=True)
        tok = self._fit_tokenizer(docs, ckpt)
        ids = torch.tensor(tok.encode(DOC_SEPARATOR.join(docs)), dtype=torch.long)
        split = int(len(ids) * (1 - self.val_fraction))
        train_ids, val_ids = ids[:split], ids[split:]
        if len(train_ids) <= self.block_size + 1:
            raise DataError(
                f"the corpus has {len(train_ids)} training tokens; expected more than the context of "
                f"{self.block_size + 1} (add text or lower block_size)"
            )
        self.model_, result = train_gpt(
            self,
            tok.vocab_size,
            train_ids,
            out_dir=ckpt,
            checkpoint_every=200 if ckpt is not None else None,
        )
        self.tokenizer_ = tok
        self.chars_per_token_ = len(DOC_SEPARATOR.join(docs)) / max(1, len(ids))
        self.history_ = result.history
        self.val_ids_ = val_ids
        self.val_loss_ = self._loss_on(val_ids) if len(val_ids) > self.block_size + 1 else None
        return self

    # ------------------------------------------------------------------ scoring
    @torch.no_grad()
    def _loss_on(self, ids: torch.Tensor, chunk: int = 256) -> float:
        """Mean next-token loss (nats) over every non-overlapping ``block_size`` window of ``ids``."""
        block = self.model_.config.block_size
        n = (len(ids) - 1) // block
        if n < 1:
            raise DataError(f"text of {len(ids)} tokens is shorter than one context of {block + 1}")
        x_all = ids[: n * block].view(n, block)
        y_all = ids[1 : n * block + 1].view(n, block)
        total = 0.0
        for i in range(0, n, chunk):
            x, y = (
                self._tensor(x_all[i : i + chunk], torch.long),
                self._tensor(y_all[i : i + chunk], torch.long),
            )
            total += float(self.model_.training_loss((x, y))["loss"]) * len(x)
        return total / n

    def score(self, text: str) -> dict[str, float]:
        """``loss_per_token`` (nats) and ``bits_per_char`` of ``text`` under the model, comparable between
        character and BPE models (bits per character = nats per token x tokens per character / ln 2)."""
        self._check_fitted()
        ids = self.encode(text)
        loss = self._loss_on(ids)
        return {"loss_per_token": loss, "bits_per_char": loss * len(ids) / max(1, len(text)) / math.log(2)}

    # ------------------------------------------------------------------ generation
    def stream(
        self,
        prompt: str = "\n",
        max_new_tokens: int = 200,
        temperature: float = 0.8,
        top_k: int | None = None,
        top_p: float | None = None,
        repetition_penalty: float = 1.0,
        stop: Sequence[str] = (),
        seed: int | None = 0,
        chunk: int = 8,
    ) -> Iterator[str]:
        """Yield the continuation of ``prompt`` piece by piece (``chunk`` tokens per call of the core
        ``GPT.generate``), ending at the first stop string (not included) or ``max_new_tokens``."""
        self._check_fitted()
        prompt_ids = self.encode(prompt) if prompt else torch.zeros(1, dtype=torch.long)
        if len(prompt_ids) == 0:
            raise DataError("generate: the prompt encodes to no tokens; give a non-empty prompt")
        generator = torch.Generator(device=self._device())
        if seed is not None:
            generator.manual_seed(seed)
        block = self.model_.config.block_size
        chunk = max(1, min(chunk, block - 1))
        ids = prompt_ids.tolist()
        new: list[int] = []
        emitted = ""
        while len(new) < max_new_tokens:
            step = min(chunk, max_new_tokens - len(new))
            context = self._tensor([ids[-(block - step) :]], torch.long)  # the cache covers the chunk
            out = self.model_.generate(
                context,
                step,
                temperature=temperature,
                top_k=top_k,
                top_p=top_p,
                repetition_penalty=repetition_penalty,
                generator=generator,
            )
            fresh = out[0, context.shape[1] :].tolist()
            ids += fresh
            new += fresh
            text = self.tokenizer_.decode(new)
            cut = min((text.find(s) for s in stop if s and s in text), default=-1)
            if cut >= 0:
                if cut > len(emitted):
                    yield text[len(emitted) : cut]
                return
            # hold back a partial UTF-8 character (BPE bytes) and what might be the start of a stop string
            hold = max((len(s) - 1 for s in stop if s), default=0)
            stable = len(text.rstrip("\ufffd")) - hold
            if stable > len(emitted):
                yield text[len(emitted) : stable]
                emitted = text[:stable]
        text = self.tokenizer_.decode(new)
        if len(text) > len(emitted):
            yield text[len(emitted) :]

    def generate(self, prompt: str = "\n", max_new_tokens: int = 200, **kwargs: Any) -> str:
        """The whole continuation of ``prompt`` (see :meth:`stream` for the sampling options)."""
        return "".join(self.stream(prompt, max_new_tokens, **kwargs))

    def num_parameters(self) -> int:
        self._check_fitted()
        return int(self.model_.num_parameters())

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> dict[str, Any]:
        return {
            "chars_per_token": self.chars_per_token_,
            "val_loss": self.val_loss_,
            "history": self.history_[-50:],
        }

    def _save_files(self, directory: Path) -> None:
        self.tokenizer_.save(directory / TOKENIZER_FILE)

    def _set_state(self, state: dict[str, Any], directory: Path) -> None:
        self.tokenizer_ = _load_tokenizer(self.tokenizer, directory / TOKENIZER_FILE)
        self.chars_per_token_ = float(state.get("chars_per_token", 1.0))
        self.val_loss_ = state.get("val_loss")
        self.history_ = list(state.get("history", []))
        self.val_ids_ = None


def _load_tokenizer(kind: str, path: Path) -> Any:
    if kind == "char":
        return CharTokenizer.load(path)
    if kind == "bpe":
        return BPETokenizer.load(path)
    raise GenforgeError(f"{path}: tokenizer kind {kind!r}; expected 'char' or 'bpe'")
