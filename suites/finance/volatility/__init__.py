"""Volatility: next-day variance with predictive quantiles and VaR from a conditional VAE on top of a
GARCH-family forecast, and the rolling evaluation protocol against the GARCH family.

``data`` (features), ``models`` (:class:`~genforge.finance.volatility.models.VolatilityForecaster`),
``var_methods`` and ``var_feedback`` (VaR quantiles and exception feedback), ``evaluate`` (the
protocol and baselines), ``stats_tests`` (losses and backtests), ``cli`` (``genforge finance vol``).
Public names are exported from :mod:`genforge.finance`.
"""
