"""Small synthetic spatial fields for the geo tests (no reference data needed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def grid_field(side: int = 15, seed: int = 0) -> pd.DataFrame:
    """A side x side grid with a smooth target (strong positive autocorrelation) plus a covariate effect."""
    rng = np.random.default_rng(seed)
    gx, gy = np.meshgrid(np.arange(side, dtype=float), np.arange(side, dtype=float))
    x, y = gx.ravel() * 10.0, gy.ravel() * 10.0
    z = rng.standard_normal(len(x))
    target = np.sin(x / 30.0) + np.cos(y / 40.0) + 0.3 * z + 0.05 * rng.standard_normal(len(x))
    return pd.DataFrame({"id": np.arange(len(x)), "y": target, "z": z, "east": x, "north": y})


@pytest.fixture(scope="session")
def field() -> pd.DataFrame:
    return grid_field()


@pytest.fixture(scope="session")
def fitted(field):
    """One SpaceGAN fitted on the synthetic grid, shared by the model tests (~10 s on one core)."""
    from genforge.geo import SpaceGAN

    model = SpaceGAN(k=8, max_steps=400, check_every=50, n_draws=10, progress=False, device="cpu", seed=0)
    return model.fit(field, target="y", coords=("east", "north"), covariates=["z"])
