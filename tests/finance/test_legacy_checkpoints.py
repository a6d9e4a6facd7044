"""Checkpoints written by the code before the SuiteEstimator base (commit b41cf63, tiny models made
with its own classes) still load and give the outputs they gave then."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from genforge.finance import LoanBookGAN, ScenarioDiffusion, ScenarioGAN, VolatilityForecaster, load_sp500

LEGACY = Path(__file__).resolve().parent / "legacy_checkpoints"


def test_volatility_forecaster_of_the_old_layout():
    est = VolatilityForecaster.load(LEGACY / "vol", device="cpu")
    assert est.var_feedback is None and est.base == "ewma"
    prices = load_sp500().iloc[-400:]
    np.testing.assert_allclose(
        est.predict(prices.iloc[-60:])["variance"].to_numpy(), np.load(LEGACY / "vol_probe.npy"), rtol=1e-6
    )


def test_scenario_models_of_the_old_layout():
    for cls, name in ((ScenarioGAN, "gan"), (ScenarioDiffusion, "diffusion")):
        est = cls.load(LEGACY / name, device="cpu")
        assert est.window_ == 16 and est.columns_ == ["x0"]
        np.testing.assert_allclose(
            est.sample(4, 16, seed=3), np.load(LEGACY / f"{name}_probe.npy"), rtol=1e-5, atol=1e-6
        )


def test_loan_book_gan_of_the_old_layout():
    est = LoanBookGAN.load(LEGACY / "loans", device="cpu")
    assert est.target_ == "creditability"
    expected = pd.read_csv(LEGACY / "loans_probe.csv")
    got = est.sample(20, seed=1)
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected, check_dtype=False)
