"""genforge.finance: three products, one sub-package of the same shape each (data, models, evaluate, cli).

- :mod:`~genforge.finance.volatility` — next-day volatility with predictive quantiles and VaR from a
  conditional VAE on a GARCH forecast (:class:`VolatilityForecaster`), evaluated against the GARCH family;
- :mod:`~genforge.finance.scenarios` — market scenarios from a TCN GAN (:class:`ScenarioGAN`) or a
  diffusion model (:class:`ScenarioDiffusion`), scored by the TimeGAN protocol and stylized facts;
- :mod:`~genforge.finance.loans` — synthetic loan books (:class:`LoanBookGAN`) and risk-based pricing
  (:class:`LoanPricer`).

Price tables are read and validated suite-wide (:mod:`genforge.finance.data`). The public names below
are imported lazily, so ``import genforge.finance`` stays light for the CLI; pages use only these.
"""

from __future__ import annotations

from genforge.lazy import lazy_getattr
from genforge.suite import Suite

SUITE = Suite(
    name="finance",
    title="Finance",
    summary="volatility forecasts with uncertainty, market scenarios, synthetic loan books and pricing",
    cli="genforge.finance.cli:app",
    demo="genforge.finance.demo:run_demo",
    estimators=(
        "genforge.finance:VolatilityForecaster",
        "genforge.finance:ScenarioGAN",
        "genforge.finance:ScenarioDiffusion",
        "genforge.finance:LoanBookGAN",
        "genforge.finance:LoanPricer",
    ),
    page="genforge.dashboards.views.finance",
    icon=":material/candlestick_chart:",
    models=("genforge.finance.scenarios.models", "genforge.finance.loans.models"),
)

_LAZY = {
    # prices (suite-wide)
    "load_prices": "genforge.finance.data",
    "load_prices_or_default": "genforge.finance.data",
    "validate_prices": "genforge.finance.data",
    "read_uploaded_table": "genforge.finance.data",
    "load_sp500": "genforge.finance.data",
    "load_nasdaq": "genforge.finance.data",
    "log_returns": "genforge.finance.data",
    "return_frame": "genforge.finance.data",
    "parkinson": "genforge.finance.data",
    "garman_klass": "genforge.finance.data",
    # errors the API raises (pages catch them)
    "DataError": "genforge.errors",
    "GenforgeError": "genforge.errors",
    # volatility
    "VolatilityForecaster": "genforge.finance.volatility.models",
    "evaluate_volatility": "genforge.finance.volatility.evaluate",
    "rolling_forecasts": "genforge.finance.volatility.evaluate",
    "baseline_models": "genforge.finance.volatility.evaluate",
    "ArchBaseline": "genforge.finance.volatility.evaluate",
    "holdout_comparison": "genforge.finance.volatility.evaluate",
    "format_table": "genforge.finance.volatility.evaluate",
    "qlike_loss": "genforge.finance.volatility.stats_tests",
    "mse_loss": "genforge.finance.volatility.stats_tests",
    "diebold_mariano": "genforge.finance.volatility.stats_tests",
    "kupiec": "genforge.finance.volatility.stats_tests",
    "christoffersen": "genforge.finance.volatility.stats_tests",
    "var_backtest": "genforge.finance.volatility.stats_tests",
    "model_confidence_set": "genforge.finance.volatility.stats_tests",
    # scenarios
    "ScenarioGAN": "genforge.finance.scenarios.models",
    "ScenarioDiffusion": "genforge.finance.scenarios.diffusion",
    "acf": "genforge.finance.scenarios.evaluate",
    "stylized_facts": "genforge.finance.scenarios.evaluate",
    "garch_paths": "genforge.finance.scenarios.evaluate",
    "quick_scenario_gan": "genforge.finance.scenarios.models",
    # loans
    "load_german_credit": "genforge.finance.loans.data",
    "read_uploaded_loans": "genforge.finance.loans.data",
    "infer_discrete_columns": "genforge.finance.loans.data",
    "LoanBookGAN": "genforge.finance.loans.models",
    "LoanPricer": "genforge.finance.loans.models",
    "quality_report": "genforge.finance.loans.evaluate",
    "quick_loan_book_gan": "genforge.finance.loans.models",
}

__all__ = ["SUITE", *_LAZY]


__getattr__ = lazy_getattr("genforge.finance", _LAZY, globals())
