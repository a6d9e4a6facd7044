"""Bad inputs to ``genforge geo``: each exits with code 2, one ``error:`` line naming the file, the column
and what was expected, no traceback, and nothing written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genforge.cli import main


def _grid(n: int = 36) -> pd.DataFrame:
    side = int(np.sqrt(n))
    gx, gy = np.meshgrid(np.arange(side) * 100.0, np.arange(side) * 100.0)
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "x": gx.ravel(),
            "y": gy.ravel(),
            "v": rng.standard_normal(side * side),
            "c": rng.standard_normal(side * side),
        }
    )


def _lonlat() -> pd.DataFrame:
    frame = _grid()
    return frame.assign(x=-76.6 + frame["x"] / 1e5, y=39.3 + frame["y"] / 1e5).rename(
        columns={"x": "lon", "y": "lat"}
    )


def _case(name: str):
    grid = _grid()
    if name == "nan_coordinate":
        return (
            grid.assign(x=grid["x"].where(grid.index != 4)),
            [],
            ["'x'", "row 4", "expected finite numbers"],
        )
    if name == "text_coordinate":
        return (
            grid.astype({"y": object}).assign(y=lambda f: f["y"].where(f.index != 2, "north")),
            [],
            ["'y'", "'north'", "expected finite numbers"],
        )
    if name == "lonlat_out_of_range":
        return (
            _lonlat().assign(lat=lambda f: f["lat"].where(f.index != 3, 95.0)),
            [],
            ["'lat'", "95", "[-90, 90]"],
        )
    if name == "projected_declared_lonlat":
        return grid, ["--crs", "lonlat"], ["'x'", "expected longitude in", "--crs projected"]
    if name == "lonlat_declared_projected":
        return _lonlat(), ["--crs", "projected"], ["'lon'/'lat'", "look like lon/lat", "--crs lonlat"]
    if name == "duplicated_location":
        return (
            grid.assign(x=grid["x"].where(grid.index != 7, grid["x"][6])),
            [],
            ["'x'/'y'", "rows 6 and 7", "expected distinct locations"],
        )
    if name == "fewer_points_than_neighbours":
        return grid.iloc[:6], [], ["6 points", "k=8", "expected more points than neighbours"]
    if name == "constant_target":
        return grid.assign(v=3.0), [], ["'v'", "constant", "expected varying values"]
    if name == "missing_target":
        return grid.drop(columns="v"), [], ["'v'", "not found"]
    if name == "text_covariate":
        return (
            grid.astype({"c": object}).assign(c=lambda f: f["c"].where(f.index != 9, "n/a")),
            [],
            ["'c'", "covariate", "row 9"],
        )
    raise AssertionError(name)


CASES = [
    "nan_coordinate",
    "text_coordinate",
    "lonlat_out_of_range",
    "projected_declared_lonlat",
    "lonlat_declared_projected",
    "duplicated_location",
    "fewer_points_than_neighbours",
    "constant_target",
    "missing_target",
    "text_covariate",
]


def _check(rc: int, capsys, words: list[str], folder: Path, before: set[Path]) -> None:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2, err
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert set(folder.rglob("*")) == before, "a failed command left files behind"


@pytest.mark.parametrize("name", CASES)
def test_bad_csv_input(name, tmp_path, capsys):
    frame, extra, words = _case(name)
    path = tmp_path / f"{name}.csv"
    frame.to_csv(path, index=False)
    before = set(tmp_path.rglob("*"))
    coords = "lon,lat" if "lon" in frame.columns else "x,y"
    extra = [*extra, "--covariates", "c"] if name == "text_covariate" else extra
    rc = main(
        [
            "geo",
            "augment",
            str(path),
            "--target",
            "v",
            "--coords",
            coords,
            "--n",
            "2",
            "--max-steps",
            "5",
            "--out",
            str(tmp_path / "out.csv"),
            *extra,
        ]
    )
    _check(rc, capsys, [path.name, *words], tmp_path, before)


def test_malformed_geojson(tmp_path, capsys):
    path = tmp_path / "broken.geojson"
    path.write_text('{"type": "FeatureCollection", "features": [ {"type": "Feat')
    before = set(tmp_path.rglob("*"))
    rc = main(["geo", "moran", str(path), "--column", "v", "--out", str(tmp_path / "m.csv")])
    _check(rc, capsys, ["broken.geojson", "not a readable vector layer"], tmp_path, before)


def test_unsupported_output_and_weights(tmp_path, capsys):
    path = tmp_path / "ok.csv"
    _grid().to_csv(path, index=False)
    before = set(tmp_path.rglob("*"))
    rc = main(["geo", "augment", str(path), "--target", "v", "--out", str(tmp_path / "out.xlsx")])
    _check(rc, capsys, ["out.xlsx", "expected .csv, .parquet, .geojson"], tmp_path, before)
    rc = main(
        ["geo", "moran", str(path), "--column", "v", "--weights", "knn:99", "--out", str(tmp_path / "m.csv")]
    )
    _check(rc, capsys, ["knn:99", "expected 1 <= k < 36"], tmp_path, before)


def test_bad_extra_weights_fail_before_training(tmp_path, capsys):
    path = tmp_path / "ok.csv"
    _grid().to_csv(path, index=False)
    before = set(tmp_path.rglob("*"))
    rc = main(
        [
            "geo",
            "evaluate",
            "--data",
            str(path),
            "--target",
            "v",
            "--coords",
            "x,y",
            "--extra-weights",
            "band:near",
            "--json",
            str(tmp_path / "eval.json"),
        ]
    )
    _check(rc, capsys, ["band:near", "expected knn:K, band:D"], tmp_path, before)


def test_bad_holdout_fails_before_training(tmp_path, capsys):
    path = tmp_path / "ok.csv"
    _grid().to_csv(path, index=False)
    before = set(tmp_path.rglob("*"))
    args = ["geo", "evaluate", "--data", str(path), "--target", "v", "--coords", "x,y"]
    rc = main([*args, "--holdout", "half", "--json", str(tmp_path / "eval.json")])
    _check(rc, capsys, ["--holdout 'half'", "expected one of cv, quarter"], tmp_path, before)
