"""The four generative model families. Each model is a plain ``nn.Module`` with a dataclass config.

Contract shared by every model (the training engine and checkpoints rely on it):
- ``config_class`` (dataclass) and ``self.config``; registered with ``@register_model(name)``.
- ``family``: "vae", "gan", "transformer" or "diffusion".
- likelihood families (vae, transformer, diffusion): ``training_loss(batch) -> dict[str, Tensor]``
  with key ``"loss"`` (a scalar to minimise) plus any scalars to log.
- adversarial family (gan): ``discriminator_loss(batch)`` and ``generator_loss(batch)``, each
  returning such a dict; ``config.n_critic`` discriminator steps per generator step; parameters of
  the two players in ``model.generator`` and ``model.discriminator``.
- a batch is a Tensor ``x`` or a tuple/list ``(x, cond)`` / ``(x, y)``; the model unpacks it.
"""
