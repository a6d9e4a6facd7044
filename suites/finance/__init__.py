"""genforge.finance: volatility forecasts with a VAE against the GARCH family, market scenarios with a
GAN, synthetic loan books and loan pricing.

Public API (imported lazily so ``import genforge.finance`` stays light for the CLI):
data (:func:`load_prices`, :func:`validate_prices`, :func:`load_sp500`, :func:`load_nasdaq`,
:func:`log_returns`, :func:`parkinson`, :func:`garman_klass`, :func:`load_german_credit`),
:class:`VolatilityForecaster`, the evaluation (:func:`evaluate_volatility`,
:func:`rolling_forecasts`, :func:`baseline_models`) and the estimators of
:mod:`genforge.finance.models` (``ScenarioGAN``, ``LoanBookGAN``, ``LoanPricer``).
"""

from __future__ import annotations

from genforge.lazy import lazy_getattr
from genforge.suite import Suite

SUITE = Suite(
    name="finance",
    title="Finance",
    summary="volatility forecasts with uncertainty, market scenarios, synthetic loan books and pricing",
    cli="genforge.finance.cli:app",
    demo="genforge.finance.cli:run_demo",
    estimators=(
        "genforge.finance:VolatilityForecaster",
        "genforge.finance:ScenarioGAN",
        "genforge.finance:ScenarioDiffusion",
        "genforge.finance:LoanBookGAN",
        "genforge.finance:LoanPricer",
    ),
    page="genforge.dashboards.views.finance",
    icon=":material/candlestick_chart:",
    models=("genforge.finance.scenarios", "genforge.finance.loans"),
)

_LAZY = {
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
    "load_german_credit": "genforge.finance.data",
    "VolatilityForecaster": "genforge.finance.volatility",
    "evaluate_volatility": "genforge.finance.evaluate",
    "rolling_forecasts": "genforge.finance.evaluate",
    "baseline_models": "genforge.finance.evaluate",
    "ArchBaseline": "genforge.finance.evaluate",
    "holdout_comparison": "genforge.finance.evaluate",
    "format_table": "genforge.finance.evaluate",
    "qlike_loss": "genforge.finance.stats_tests",
    "mse_loss": "genforge.finance.stats_tests",
    "diebold_mariano": "genforge.finance.stats_tests",
    "kupiec": "genforge.finance.stats_tests",
    "christoffersen": "genforge.finance.stats_tests",
    "var_backtest": "genforge.finance.stats_tests",
    "model_confidence_set": "genforge.finance.stats_tests",
    "ScenarioGAN": "genforge.finance.models",
    "ScenarioDiffusion": "genforge.finance.scenario_diffusion",
    "LoanBookGAN": "genforge.finance.models",
    "LoanPricer": "genforge.finance.models",
}

__all__ = ["SUITE", *_LAZY]


__getattr__ = lazy_getattr("genforge.finance", _LAZY, globals())
