"""Reading and validating point layers: CSV, GeoJSON points, polygon layers, embedded and reference data."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from genforge.errors import DataError
from genforge.geo import baltimore, prepare, read_spatial, reference, weights


def test_baltimore_is_embedded():
    data = baltimore()
    assert len(data) == 211 and data.target == ["PRICE"] and data.coords == ("X", "Y")
    assert data.crs == "projected" and data.x.shape == (211, 12)


def test_csv_detects_coordinates_and_covariates(tmp_path, field):
    path = tmp_path / "grid.csv"
    field.rename(columns={"east": "x", "north": "y_coord"}).to_csv(path, index=False)
    with pytest.raises(DataError, match="no coordinate columns found"):
        read_spatial(path, target="y")
    data = read_spatial(path, target="y", coords="x,y_coord")
    assert data.covariates == ["z"]  # id is not a covariate
    assert data.crs == "projected"


def test_lonlat_detected_and_projected(tmp_path):
    frame = pd.DataFrame(
        {"lon": [-122.0, -122.1, -122.2, -121.9], "lat": [37.0, 37.1, 37.3, 37.2], "v": [1.0, 2.0, 3.0, 5.0]}
    )
    data = prepare(frame, "v", k=2)
    assert data.crs == "lonlat"
    np.testing.assert_allclose(data.xy[:, 0], frame["lon"] * np.cos(np.deg2rad(frame["lat"].mean())))


def test_geojson_points_and_polygons(tmp_path, field):
    # GeoJSON coordinates are lon/lat (RFC 7946): a small area in degrees
    lon, lat = -76.6 + field["east"] / 1000, 39.3 + field["north"] / 1000
    points = gpd.GeoDataFrame(field[["y", "z"]], geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")
    path = tmp_path / "points.geojson"
    points.to_file(path, driver="GeoJSON")
    data = read_spatial(path, target="y")
    assert data.coords == ("geom_x", "geom_y") and data.crs == "lonlat"
    assert len(data) == len(field) and data.covariates == ["z"]

    cells = [box(1000 * i, 1000 * j, 1000 * (i + 1), 1000 * (j + 1)) for i in range(5) for j in range(4)]
    polys = gpd.GeoDataFrame({"v": np.arange(20.0) % 7}, geometry=cells, crs="EPSG:3857")
    path = tmp_path / "cells.geojson"
    polys.to_file(path, driver="GeoJSON")
    layer = read_spatial(path, target="v", k=3)
    assert layer.polygons is not None and layer.crs == "projected"
    np.testing.assert_allclose(layer.xy[0], [500.0, 500.0])  # the centroid
    w = weights(layer.xy, "rook", layer.polygons)
    assert w.cardinalities[0] == 2


def test_california_keeps_shared_locations(shared_data):
    data = reference("california", shared_data)
    assert len(data) == 20640 and data.crs == "lonlat" and data.target == ["houseValue"]


@pytest.mark.parametrize("name,n", [("toy1", 400), ("toy2", 841)])
def test_toy_sets(shared_data, name, n):
    data = reference(name, shared_data)
    assert len(data) == n and data.covariates == ["z"] and data.crs == "projected"
