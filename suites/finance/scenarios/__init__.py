"""Market scenarios: return paths from a TCN GAN (Quant GAN style) or a diffusion model, and their
evaluation (TimeGAN protocol, Quant GAN's stylized facts).

``data`` (windows and per-channel transforms), ``models`` (:class:`ScenarioGAN` and its network),
``diffusion`` (:class:`ScenarioDiffusion`), ``evaluate``, ``cli`` (``genforge finance scenarios``).
Public names are exported from :mod:`genforge.finance`.
"""
