"""ScenarioDiffusion (the diffusion variant of the scenario model) and evaluate-gen --model diffusion."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from genforge.cli import main
from genforge.errors import GenforgeError
from genforge.finance.scenarios.diffusion import ScenarioDiffusion


def _small(**kw) -> ScenarioDiffusion:
    params = dict(
        window=8,
        base_channels=8,
        steps=40,
        batch_size=32,
        timesteps=50,
        sample_steps=5,
        progress=False,
        seed=0,
    )
    params.update(kw)
    return ScenarioDiffusion(**params)


def test_fit_sample_lengths_and_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    level = np.cumsum(rng.normal(size=300))
    series = pd.DataFrame({"a": level, "b": level + 0.1 * rng.normal(size=300)})
    model = _small().fit(series)
    assert model.sample(5).shape == (5, 8, 2)
    assert model.sample(3, length=11).shape == (3, 11, 2)  # rounded up to the UNet's factor, cropped
    assert len(model.history_) > 0
    model.save(tmp_path / "d")
    again = ScenarioDiffusion.load(tmp_path / "d")
    np.testing.assert_allclose(again.sample(4, seed=2), model.sample(4, seed=2), rtol=1e-5, atol=1e-6)
    frame = again.simulate(2, 3, seed=0)
    assert list(frame.columns) == ["path", "t", "a", "b"] and len(frame) == 6


def test_clip_and_errors(tmp_path):
    x = np.random.default_rng(1).uniform(0, 1, size=(64, 8, 3))
    s = _small(steps=2, clip=True, preprocessing="standard").fit(x).sample(16, seed=0)
    assert s.min() >= x.min() - 1e-12 and s.max() <= x.max() + 1e-12
    with pytest.raises(GenforgeError, match="multiple of 2"):
        _small(window=7).fit(np.zeros((50, 1)))
    with pytest.raises(GenforgeError, match="preprocessing"):
        _small(preprocessing="boxcox").fit(x)
    with pytest.raises(NotFittedError, match="not fitted"):
        _small().sample(2)
    (tmp_path / "x").mkdir()
    from genforge.checkpoints import save
    from genforge.models.gan import GAN, GANConfig

    save(GAN(GANConfig(kind="sequence", hidden=(8,), length=8)), tmp_path / "x", extra={"format": "x"})
    with pytest.raises(GenforgeError, match="expected a ScenarioDiffusion checkpoint"):
        ScenarioDiffusion.load(tmp_path / "x")


def test_evaluate_gen_with_the_diffusion_model(tmp_path, capsys):
    """The Stocks protocol end to end on a tiny stand-in for stock_data.csv (72 days, 49 windows)."""
    rng = np.random.default_rng(2)
    close = 100 + np.cumsum(rng.normal(size=72))
    frame = pd.DataFrame(
        {
            "Open": close + rng.normal(size=72) * 0.2,
            "High": close + 1,
            "Low": close - 1,
            "Close": close,
            "Adj_Close": close,
            "Volume": rng.uniform(1e6, 2e6, size=72),
        }
    )
    stocks, out = tmp_path / "stocks.csv", tmp_path / "g.json"
    frame.to_csv(stocks, index=False)
    argv = [
        "finance",
        "scenarios",
        "evaluate",
        "--stocks",
        str(stocks),
        "--skip-stylized",
        "--model",
        "diffusion",
    ]
    argv += ["--seeds", "1", "--steps", "3", "--judge-steps", "2", "--predictor-steps", "2"]
    argv += ["--json", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    result = json.loads(out.read_text())
    assert result["settings"]["model"] == "diffusion" and result["settings"]["steps"] == 3
    assert result["settings"]["ema_decay"] == 0.995  # the diffusion model's default
    assert 0.0 <= result["discriminative"] <= 0.5 and np.isfinite(result["nn_ratio"])
    seed0 = result["timegan"]["per_seed"][0]
    assert result["roughness"] > 0 and len(seed0["roughness_per_channel"]) == 6
    assert main(["finance", "scenarios", "evaluate", "--model", "vae"]) == 2
    assert "--model" in capsys.readouterr().err
