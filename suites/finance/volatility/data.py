"""Volatility inputs: the checked price table and the features the forecaster reads at each close.

Prices are read and validated suite-wide (:mod:`genforge.finance.data`: CSV/Parquet OHLC[V], the
bundled S&P 500 and NASDAQ, percent log returns and range variances); this module turns a return
frame and a base variance forecast into the forecaster's conditioning features.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from genforge.finance.data import PRICE_COLUMNS, validate_prices

FEATURES: tuple[str, ...] = (
    "log_base",
    "r2_1",
    "r2_5",
    "r2_22",
    "pk_1",
    "pk_5",
    "pk_22",
    "lev_neg",
)
"""Features known at the close ``s``: the log base level, HAR-style 1/5/22-day averages of ``r^2`` and
of the Parkinson range variance (relative to the base forecast) and a leverage term."""
HAR_WINDOW = 22
MIN_TRAIN = 250


def check_prices(prices: pd.DataFrame) -> pd.DataFrame:
    """Accept an already validated table quickly; validate anything else."""
    if isinstance(prices.index, pd.DatetimeIndex) and all(c in prices.columns for c in PRICE_COLUMNS):
        return prices
    return validate_prices(prices)


def har_features(frame: pd.DataFrame, base: np.ndarray, delta: float, scale: float) -> np.ndarray:
    """Feature matrix ``[n, len(FEATURES)]`` at each close of a return frame (rows before day 22 are NaN).

    ``base`` is the base variance forecast at each close, ``delta`` the offset of the log ratios
    (relative to ``base``) and ``scale`` the training window's mean squared return (for ``log_base``).
    The Garman-Klass variance is left out on purpose: it uses the Open, which in the bundled S&P 500
    equals the previous Close on most days before 2006, so its meaning changes inside the sample; the
    signed return is left out because GJR already carries the sign asymmetry.
    """
    r = frame["return"].astype(float)
    r2 = r**2
    pk = frame["parkinson"].astype(float)
    b = pd.Series(base, index=frame.index)
    eps = delta * b

    def rel(series: pd.Series, window: int) -> pd.Series:
        avg = series.rolling(window, min_periods=window).mean() if window > 1 else series
        return np.log((avg + eps) / b)

    sd = np.sqrt(b)
    cols = [
        np.log(b / scale),
        rel(r2, 1),
        rel(r2, 5),
        rel(r2, HAR_WINDOW),
        rel(pk, 1),
        rel(pk, 5),
        rel(pk, HAR_WINDOW),
        np.minimum(r, 0.0) / sd,
    ]
    return np.column_stack([np.asarray(c, dtype=float) for c in cols])
