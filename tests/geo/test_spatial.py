"""Moran's I: the torch statistics match esda; weights specs; clusters."""

from __future__ import annotations

import esda
import numpy as np
import pytest
import torch

from genforge.errors import DataError
from genforge.geo import baltimore, global_moran_torch, local_moran_torch, moran, sparse_weights, weights
from genforge.geo.spatial import paper_band


@pytest.mark.parametrize("spec", ["knn:8", "knn:3", "band:40"])
def test_torch_local_moran_matches_esda(spec):
    data = baltimore()
    w = weights(data.xy, spec)
    W = sparse_weights(w)
    price = data.y[:, 0]
    rng = np.random.default_rng(0)
    fields = np.stack([price, price[rng.permutation(len(price))], rng.standard_normal(len(price))])
    ours = local_moran_torch(torch.as_tensor(fields), W).numpy()  # batched over three fields
    for row, values in zip(ours, fields, strict=True):
        np.testing.assert_allclose(row, esda.Moran_Local(values, w, permutations=0).Is, atol=1e-6, rtol=0)
    glob = global_moran_torch(torch.as_tensor(fields), W).numpy()
    for value, values in zip(glob, fields, strict=True):
        assert abs(value - esda.Moran(values, w, permutations=0).I) < 1e-6


def test_torch_moran_on_a_grid_with_queen_weights(field):
    xy = field[["east", "north"]].to_numpy(float)
    w = weights(xy, "queen")
    assert w.cardinalities[0] == 3 and max(w.cardinalities.values()) == 8
    values = field["y"].to_numpy()
    ours = local_moran_torch(torch.as_tensor(values), sparse_weights(w)).numpy()
    np.testing.assert_allclose(ours, esda.Moran_Local(values, w, permutations=0).Is, atol=1e-6, rtol=0)


def test_torch_moran_is_differentiable():
    data = baltimore()
    W = sparse_weights(weights(data.xy, "knn:8"))
    values = torch.as_tensor(data.y[:, 0]).clone().requires_grad_(True)
    local_moran_torch(values, W).pow(2).mean().backward()
    assert values.grad is not None and torch.isfinite(values.grad).all() and values.grad.abs().sum() > 0


def test_moran_clusters_and_known_autocorrelation(field):
    xy = field[["east", "north"]].to_numpy(float)
    summary, table = moran(field["y"].to_numpy(), weights(xy, "knn:8"), permutations=99)
    assert summary["I"] > 0.5 and summary["p_sim"] <= 0.01  # the smooth field is strongly autocorrelated
    assert set(table["quadrant"]) <= {"HH", "LH", "LL", "HL"} and {"HH", "LL"} <= set(table["cluster"])
    noise = np.random.default_rng(1).standard_normal(len(xy))
    assert abs(moran(noise, weights(xy, "knn:8"), permutations=0)[0]["I"]) < 0.15


def test_bad_weight_specs():
    xy = baltimore().xy
    with pytest.raises(DataError, match="expected knn:K"):
        weights(xy, "nearest")
    with pytest.raises(DataError, match="k=500"):
        weights(xy, "knn:500")
    with pytest.raises(DataError, match="not a full regular grid"):
        weights(xy, "rook")


def test_paper_band_is_the_third_distinct_distance_of_the_full_matrix():
    """SpaceGAN's code: np.sort(np.unique(libpysal.cg.distance_matrix(xy)))[2], float for float."""
    import libpysal

    rng = np.random.default_rng(0)
    for _ in range(3):
        xy = np.round(rng.uniform(-120.0, -119.0, (300, 2)), 2)  # rounded like California's coordinates
        assert paper_band(xy) == np.sort(np.unique(libpysal.cg.distance_matrix(xy)))[2]
    grid = np.array([[i, j] for i in range(5) for j in range(5)], float)
    assert paper_band(grid) == pytest.approx(np.sqrt(2.0))  # a lattice's queen band
    assert len(weights(grid, "band:paper").neighbors[12]) == 8


def test_isolated_points_have_local_moran_zero_as_esda():
    xy = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [9.0, 9.0], [3.0, 0.0], [3.0, 1.0]])
    w = weights(xy, "band:1.0")
    assert w.islands == [4]
    values = np.array([1.0, 2.0, 0.5, 3.0, 7.0, -1.0, 0.0])
    ours = local_moran_torch(torch.as_tensor(values), sparse_weights(w)).numpy()
    np.testing.assert_allclose(ours, esda.Moran_Local(values, w, permutations=0).Is, atol=1e-9)
    assert ours[4] == 0.0


def test_california_paper_weights_leave_4910_points_without_neighbours():
    from genforge.geo.data import data_root

    root = data_root()
    path = None if root is None else root / "spacegan" / "houses1990.csv"
    if path is None or not path.is_file():
        pytest.skip("needs ../shared/data/spacegan/houses1990.csv (the reference data folder)")
    import pandas as pd

    xy = pd.read_csv(path)[["longitude", "latitude"]].to_numpy(float)
    assert paper_band(xy) == 0.00999999999999801
    assert len(weights(xy, "band:paper").islands) == 4910
