"""``genforge geo`` through the real entry point: moran, train + augment --model, augment, evaluate --json."""

from __future__ import annotations

import json

import geopandas as gpd
import pandas as pd
import pytest
from libpysal.examples import get_path

from genforge.cli import main


def test_moran_on_baltimore(tmp_path, capsys):
    shp = get_path("baltim.shp")
    out = tmp_path / "clusters.geojson"
    assert (
        main(
            [
                "geo",
                "moran",
                shp,
                "--column",
                "PRICE",
                "--coords",
                "X,Y",
                "--weights",
                "knn:6",
                "--permutations",
                "99",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "global Moran's I of PRICE" in text and "HH" in text
    layer = gpd.read_file(out)
    assert len(layer) == 211 and {"local_I", "quadrant", "p_sim", "cluster"} <= set(layer.columns)


def test_train_then_augment_with_model(tmp_path, field, capsys):
    data = tmp_path / "grid.csv"
    field.to_csv(data, index=False)
    model = tmp_path / "model"
    args = [
        "geo",
        "train",
        str(data),
        "--target",
        "y",
        "--coords",
        "east,north",
        "--covariates",
        "z",
        "--max-steps",
        "30",
        "--out",
        str(model),
    ]
    assert main(args) == 0
    assert (model / "model.safetensors").is_file() and (
        model / "training" / "trainer_state.safetensors"
    ).is_file()
    out = tmp_path / "more.parquet"
    assert main(["geo", "augment", str(data), "--model", str(model), "--n", "3", "--out", str(out)]) == 0
    table = pd.read_parquet(out)
    assert len(table) == 3 * len(field) and list(table.columns) == [*field.columns, "draw"]


def test_train_calibrates_by_block_folds(tmp_path, field, capsys):
    from genforge.geo import SpaceGAN

    data = tmp_path / "grid.csv"
    field.to_csv(data, index=False)
    args = ["geo", "train", str(data), "--target", "y", "--coords", "east,north", "--max-steps", "20"]
    assert main([*args, "--calibrate-folds", "2", "--out", str(tmp_path / "m")]) == 0
    assert "90% interval at new points" in capsys.readouterr().out
    loaded = SpaceGAN.load(tmp_path / "m")
    assert loaded.interval_["score"] == "local" and loaded.interval_["half"][0] > 0
    assert loaded.reference_errors_.shape == (len(field), 1)
    assert main([*args, "--calibrate-folds", "1", "--out", str(tmp_path / "bad")]) == 2
    assert not (tmp_path / "bad").exists()


def test_augment_fits_and_writes_csv(tmp_path, field):
    data = tmp_path / "grid.csv"
    field.to_csv(data, index=False)
    out = tmp_path / "more.csv"
    assert (
        main(
            [
                "geo",
                "augment",
                str(data),
                "--target",
                "y",
                "--coords",
                "east,north",
                "--n",
                "2",
                "--max-steps",
                "20",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    table = pd.read_csv(out)
    assert len(table) == 2 * len(field) and set(table["draw"]) == {0, 1}


def test_evaluate_writes_the_issue_keys(tmp_path, field, capsys):
    data = tmp_path / "grid.csv"
    field.to_csv(data, index=False)
    out = tmp_path / "eval.json"
    assert (
        main(
            [
                "geo",
                "evaluate",
                "--data",
                str(data),
                "--target",
                "y",
                "--coords",
                "east,north",
                "--covariates",
                "z",
                "--max-steps",
                "20",
                "--check-every",
                "10",
                "--draws",
                "4",
                "--seeds",
                "0",
                "--baselines",
                "original,linear,kriging",
                "--extra-weights",
                "band:paper",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    result = json.loads(out.read_text())
    for key in (
        "rmse",
        "mie",
        "rmse_best_rmse",
        "mie_best_rmse",
        "baselines",
        "moran_global_real",
        "moran_global_draws",
        "coverage90",
        "seeds",
    ):
        assert key in result, key
    assert set(result["baselines"]) == {"original", "linear", "kriging"} and result["seeds"] == [0]
    assert {"ours_uncalibrated", "ours_abs", "ours_local"} <= set(result["coverage90_baselines"])
    seed0 = result["per_seed"][0]  # block CV (the default): every point held out once, per-fold figures
    assert seed0["holdout"] == "cv" and seed0["holdout_points"] == len(field)
    assert len(seed0["coverage90_folds"]) == 4 and sum(seed0["holdout_fold_points"]) == len(field)
    assert set(seed0["coverage90_baselines_folds"]) == set(result["coverage90_baselines"])
    assert {"mean", "max_abs_error"} <= set(result["moran_global_draws"])
    paper = result["weights_variants"]["band:paper"]  # the grid's paper band is its queen band: no islands
    assert paper["isolated"] == 0 and {"ours", "ours_best_rmse", "baselines"} <= set(paper)
    assert set(paper["baselines"]) == {"original", "linear", "kriging"}
    assert paper["ours"]["mie_connected"] == pytest.approx(paper["ours"]["mie"])
    assert "ours (best-MIE ckpt)" in capsys.readouterr().out
