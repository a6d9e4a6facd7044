"""The content suite's one way to build and train its GPT language models (``TextGenerator``,
``MusicGenerator``): the core GPT sized by the estimator's parameters, trained by the core Trainer on
every ``block_size`` window of a token stream with nanoGPT's recipe
(:func:`genforge.recipes.nanogpt_train_config`).
"""

from __future__ import annotations

from typing import Any

import torch


def train_gpt(
    est: Any, vocab_size: int, ids: torch.Tensor, dataset: Any = None, **train_fields: Any
) -> tuple[Any, Any]:
    """Seed torch with ``est.seed``, build a GPT from ``est``'s size parameters (``block_size``, ``n_layer``,
    ``n_head``, ``n_embd``, ``dropout``) and train it on the windows of ``ids`` with ``est``'s optimisation
    parameters; ``dataset`` replaces the windows of ``ids`` (pairs ``(x, y)``, ``y = -1`` ignored);
    ``train_fields`` adds ``TrainConfig`` fields (checkpointing). Returns (model in eval mode,
    TrainResult)."""
    from genforge.content.text.data import Windows
    from genforge.models.transformer import GPT, GPTConfig
    from genforge.recipes import nanogpt_train_config
    from genforge.training import Trainer

    torch.manual_seed(est.seed)
    model = GPT(
        GPTConfig(
            vocab_size=vocab_size,
            block_size=est.block_size,
            n_layer=est.n_layer,
            n_head=est.n_head,
            n_embd=est.n_embd,
            dropout=est.dropout,
            bias=False,
            position=getattr(est, "position", "learned"),  # opt-in rotary positions (MusicGenerator)
        )
    )
    cfg = nanogpt_train_config(
        max_steps=est.max_steps,
        batch_size=est.batch_size,
        lr=est.lr,
        weight_decay=est.weight_decay,
        warmup_steps=est.warmup_steps,
        # opt-in optimiser / schedule (TextGenerator has them; an estimator without them keeps nanoGPT's)
        optimizer=getattr(est, "optimizer", "adamw"),
        muon_lr=getattr(est, "muon_lr", 0.02),
        lr_schedule=getattr(est, "lr_schedule", "cosine"),
        seed=est.seed,
        progress=est.progress,
        device=est.device,
        **train_fields,
    )
    result = Trainer(cfg).fit(model, dataset if dataset is not None else Windows(ids, est.block_size))
    return model.eval(), result
