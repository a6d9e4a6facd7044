"""Scenario inputs: series cut into windows, the per-channel transforms a generator learns in, the
TimeGAN "Stocks" windows and the bundled S&P 500 returns.

Preprocessing (per channel), because a GAN learns a bounded, roughly Gaussian target far more
easily than raw heavy-tailed returns:

- ``"lambertw"`` (Quant GAN): standardise, apply the inverse Lambert W x Gaussian transform
  (Goerg 2015, "The Lambert way to Gaussianize heavy-tailed data") with the tail parameter delta
  chosen so the result has a kurtosis of 3, then standardise again. Sampling applies the inverse.
- ``"standard"``: z-score only.
- ``"whiten"``: z-score, then rotate onto the principal components of the channels and scale each
  component to unit variance (PCA whitening, fitted on the training values). For channels that move
  almost together, such as the open/high/low/close prices of the TimeGAN benchmark (correlations
  0.9997-1), the small differences between them (the intraday spreads) become components of their
  own, so the generator's per-channel error does not swamp them. A component whose variance is
  (almost) zero, e.g. of two identical columns, keeps a floor of 1e-8 of the total variance, so it
  is generated as (almost) exactly zero.
- ``"none"``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from genforge.errors import DataError

PREPROCESSING = ("lambertw", "standard", "whiten", "none")
WHITEN_FLOOR = 1e-8  # smallest component variance kept by "whiten", relative to the total
STOCK_COLUMNS = ("Open", "High", "Low", "Close", "Adj_Close", "Volume")


def lambertw_inverse(u: np.ndarray, delta: float) -> np.ndarray:
    """Gaussianize heavy tails: ``W_delta^{-1}(u) = sign(u) sqrt(W(delta u^2) / delta)`` (Goerg 2015)."""
    if delta <= 0:
        return u
    return np.sign(u) * np.sqrt(np.real(special.lambertw(delta * u**2)) / delta)


def lambertw_forward(z: np.ndarray, delta: float) -> np.ndarray:
    """Heavy-tail a Gaussian-like variable: ``u = z exp(delta z^2 / 2)``, the inverse of the above."""
    return z * np.exp(0.5 * delta * z**2)


def fit_lambertw_delta(u: np.ndarray) -> float:
    """Tail parameter delta in [0, 2] whose inverse transform gives the standardised data a kurtosis of 3."""
    u = (u - u.mean()) / (u.std() + 1e-12)
    if stats.kurtosis(u, fisher=False) <= 3.0:
        return 0.0

    def objective(delta: float) -> float:
        z = lambertw_inverse(u, delta)
        return float((stats.kurtosis(z, fisher=False) - 3.0) ** 2)

    res = optimize.minimize_scalar(objective, bounds=(0.0, 2.0), method="bounded", options={"xatol": 1e-4})
    return float(res.x)


@dataclasses.dataclass
class ChannelTransform:
    """Per-channel affine + Lambert W (or whitening) parameters, kept as JSON in the checkpoint's ``extra``.

    ``rotation`` [C, C] (columns: principal directions) and ``scale`` [C] are set by "whiten" only.
    """

    kind: str
    mean1: list[float]
    std1: list[float]
    delta: list[float]
    mean2: list[float]
    std2: list[float]
    lo: list[float]
    hi: list[float]
    rotation: list[list[float]] | None = None
    scale: list[float] | None = None

    @classmethod
    def fit(cls, series: np.ndarray, kind: str) -> ChannelTransform:
        """``series`` [T, C] (all values the windows are made of)."""
        c = series.shape[1]
        mean1, std1 = series.mean(0), series.std(0) + 1e-12
        delta = np.zeros(c)
        if kind == "none":
            mean1, std1 = np.zeros(c), np.ones(c)
        z = (series - mean1) / std1
        if kind == "lambertw":
            delta = np.array([fit_lambertw_delta(z[:, j]) for j in range(c)])
            z = np.stack([lambertw_inverse(z[:, j], delta[j]) for j in range(c)], 1)
        mean2, std2 = (z.mean(0), z.std(0) + 1e-12) if kind == "lambertw" else (np.zeros(c), np.ones(c))
        rotation = scale = None
        if kind == "whiten":
            eig, vec = np.linalg.eigh(z.T @ z / len(z))
            eig = np.clip(eig, 0.0, None)
            rotation = vec.tolist()
            scale = np.sqrt(np.maximum(eig, WHITEN_FLOOR * max(eig.sum(), 1e-12))).tolist()
        return cls(
            kind,
            *(a.tolist() for a in (mean1, std1, delta, mean2, std2, series.min(0), series.max(0))),
            rotation=rotation,
            scale=scale,
        )

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Data -> model space; ``x`` [..., C]."""
        z = (x - np.asarray(self.mean1)) / np.asarray(self.std1)
        if self.kind == "lambertw":
            z = np.stack([lambertw_inverse(z[..., j], d) for j, d in enumerate(self.delta)], -1)
        if self.rotation is not None:
            z = (z @ np.asarray(self.rotation)) / np.asarray(self.scale)
        return (z - np.asarray(self.mean2)) / np.asarray(self.std2)

    def inverse(self, z: np.ndarray) -> np.ndarray:
        """Model space -> data; ``z`` [..., C]."""
        z = z * np.asarray(self.std2) + np.asarray(self.mean2)
        if self.rotation is not None:
            z = (z * np.asarray(self.scale)) @ np.asarray(self.rotation).T
        if self.kind == "lambertw":
            z = np.stack([lambertw_forward(z[..., j], d) for j, d in enumerate(self.delta)], -1)
        return z * np.asarray(self.std1) + np.asarray(self.mean1)


# --------------------------------------------------------------------------------------------- inputs


def make_windows(series: np.ndarray, window: int, stride: int = 1) -> np.ndarray:
    """Overlapping windows ``[N, window, C]`` of a series ``[T, C]`` (stride ``stride``)."""
    if series.ndim == 1:
        series = series[:, None]
    n = (len(series) - window) // stride + 1
    if n < 1:
        raise DataError(f"series of {len(series)} steps is shorter than the window of {window} steps")
    idx = np.arange(window)[None, :] + stride * np.arange(n)[:, None]
    return series[idx]


def _as_array(data: Any) -> tuple[np.ndarray, list[str]]:
    if isinstance(data, pd.Series):
        data = data.to_frame(name=data.name if data.name is not None else "value")
    if isinstance(data, pd.DataFrame):
        numeric = data.select_dtypes("number")
        dropped = [c for c in data.columns if c not in numeric.columns]
        if dropped:
            raise DataError(
                f"scenario data: column(s) {dropped} are not numeric; expected numeric columns only"
            )
        return numeric.to_numpy(np.float64), [str(c) for c in numeric.columns]
    arr = np.asarray(data, dtype=np.float64)
    channels = arr.shape[-1] if arr.ndim >= 2 else 1
    return arr, [f"x{j}" for j in range(channels)]


def prepare_windows(data: Any, window: int, stride: int = 1) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Checked inputs of a scenario model: ``(values [T, C], windows [N, L, C], column names)``.

    ``data`` is a series ``[T, C]`` (DataFrame / Series / array; cut into windows of ``window`` steps
    every ``stride`` steps) or ready windows ``[N, L, C]``; ``values`` are all the numbers the windows
    are made of (what the preprocessing is fitted on).
    """
    arr, columns = _as_array(data)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim == 2:
        if len(arr) < window + 1:
            raise DataError(f"scenario data: {len(arr)} rows; expected more than window={window}")
        values = arr
    elif arr.ndim == 3:
        values = arr.reshape(-1, arr.shape[2])
    else:
        raise DataError(f"scenario data: expected [T, C] or [N, L, C] values, got shape {arr.shape}")
    if not np.all(np.isfinite(values)):
        raise DataError("scenario data: contains NaN or infinite values; expected finite numbers")
    windows = make_windows(arr, window, stride) if arr.ndim == 2 else arr
    return values, windows, columns



def to_data_scale(transform: ChannelTransform, z: np.ndarray, clip: bool) -> np.ndarray:
    """Model-space paths [N, L, C] back on the data's scale, clipped to the training range if ``clip``."""
    out = transform.inverse(z)
    if clip:
        out = np.clip(out, np.asarray(transform.lo), np.asarray(transform.hi))
    return out


def paths_frame(paths: np.ndarray, columns: list[str]) -> pd.DataFrame:
    """Paths [N, L, C] as a long table: columns ``path``, ``t`` and one column per channel."""
    n, length, c = paths.shape
    frame = pd.DataFrame(paths.reshape(n * length, c), columns=columns)
    frame.insert(0, "t", np.tile(np.arange(length), n))
    frame.insert(0, "path", np.repeat(np.arange(n), length))
    return frame


# --------------------------------------------------------------------------------------------- reference data


def load_stock_windows(path: str | Path, window: int = 24) -> np.ndarray:
    """TimeGAN "Stocks": min-max scaled columns, overlapping windows ``[N, window, 6]`` in time order."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found; expected TimeGAN's stock_data.csv")
    df = pd.read_csv(path)
    missing = [c for c in STOCK_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; expected {list(STOCK_COLUMNS)}")
    values = df[list(STOCK_COLUMNS)].to_numpy(np.float64)
    lo, hi = values.min(0), values.max(0)
    scaled = (values - lo) / (hi - lo + 1e-7)  # TimeGAN's MinMaxScaler (with its 1e-7)
    idx = np.arange(window)[None, :] + np.arange(len(scaled) - window + 1)[:, None]
    return scaled[idx].astype(np.float32)


def split_windows(windows: np.ndarray, holdout: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Shuffle with a fixed seed (TimeGAN's loader shuffles windows) and hold out the last fraction."""
    order = np.random.default_rng(seed).permutation(len(windows))
    n_hold = int(round(len(windows) * holdout))
    return windows[order[: len(windows) - n_hold]], windows[order[len(windows) - n_hold :]]


def sp500_log_returns() -> np.ndarray:
    """Daily log returns (decimal) of the bundled S&P 500 close, 1999-2018 (5,030 values)."""
    from genforge.finance.data import load_sp500, log_returns

    return log_returns(load_sp500()).to_numpy(np.float64) / 100.0


def default_stock_csv() -> Path | None:
    """``$GENFORGE_DATA/timegan/stock_data.csv`` or ``../shared/data/timegan/stock_data.csv`` if present."""
    import os

    root = Path(
        os.environ.get("GENFORGE_DATA", Path(__file__).resolve().parents[3].parent / "shared" / "data")
    )
    path = root / "timegan" / "stock_data.csv"
    return path if path.is_file() else None
