"""The finance suite's estimators in one place (scikit-learn style, DataFrames in and out).

- :class:`VolatilityForecaster` — next-day variance with predictive quantiles and VaR (VAE).
- ``ScenarioGAN`` — market return paths; ``LoanBookGAN`` — synthetic loan books; ``LoanPricer`` —
  PD model and risk-based rates (:mod:`genforge.finance.scenarios`, :mod:`genforge.finance.loans`).
  They are re-exported when those modules are present.
"""

from __future__ import annotations

from genforge.finance.volatility import VolatilityForecaster

__all__ = ["VolatilityForecaster"]

try:
    from genforge.finance.scenarios import ScenarioGAN  # noqa: F401

    __all__.append("ScenarioGAN")
except ImportError:  # pragma: no cover - module written by another helper
    pass

try:
    from genforge.finance.loans import LoanBookGAN, LoanPricer  # noqa: F401

    __all__ += ["LoanBookGAN", "LoanPricer"]
except ImportError:  # pragma: no cover - module written by another helper
    pass
