"""Read and validate spatial point data: CSV/Parquet with coordinate columns, GeoJSON points, polygon layers.

Everything ends in one :class:`SpatialData`: the table (the input's columns, unchanged), planar
coordinates for neighbour searches, the target and covariate names, and (for polygon layers) the
polygons, which maps and contiguity weights use while the model works on their centroids.

Checks (each a one-line :class:`~genforge.errors.DataError` naming the file and the column): missing,
NaN or non-numeric coordinates and targets; lon/lat out of range; coordinates declared as lon/lat that are
planar, and planar ones (a projected CRS) that hold degrees; duplicated locations; fewer points than
neighbours; a constant target.

Coordinates: ``crs="auto"`` takes columns named like lon/lat (lon, lng, longitude / lat, latitude) as lon/lat
and checks their range, anything else as planar; ``"lonlat"`` and ``"projected"`` declare it. Lon/lat
is projected with an equirectangular projection about the mean latitude (x = lon cos(lat0), y = lat, in
degrees), which is what neighbour searches need at city to state scale. ``lat0`` is kept on the layer;
subsets and new points must be projected with the same ``lat0`` (``prepare(..., lat0=)``), or their x
shifts against the rest by lon x the change in cos(lat0) (on California, hundreds of km).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genforge.errors import DataError

CRS_KINDS = ("auto", "lonlat", "projected")
X_NAMES = ("x", "lon", "lng", "long", "longitude", "easting", "coord_x")
Y_NAMES = ("y", "lat", "latitude", "northing", "coord_y")
LONLAT_X = {"lon", "lng", "long", "longitude"}
LONLAT_Y = {"lat", "latitude"}
TABLE_SUFFIXES = (".csv", ".parquet", ".pq")
VECTOR_SUFFIXES = (".geojson", ".json", ".shp", ".gpkg")
DATA_ENV = "GENFORGE_DATA"
GEOM_X, GEOM_Y = "geom_x", "geom_y"


@dataclass
class SpatialData:
    """A validated point layer. ``xy`` is planar ([N, 2], the space for neighbour searches)."""

    frame: pd.DataFrame
    xy: np.ndarray
    target: list[str]
    covariates: list[str]
    coords: tuple[str, str]
    crs: str  # "lonlat" | "projected"
    source: str = "<frame>"
    polygons: Any = None  # a geopandas GeoSeries of the polygons when the layer had them
    notes: list[str] = field(default_factory=list)
    lat0: float | None = None  # the reference latitude of the lon/lat projection (None when planar)

    @property
    def y(self) -> np.ndarray:
        """Targets as a float array [N, T]."""
        return self.frame[self.target].to_numpy(float)

    @property
    def x(self) -> np.ndarray:
        """Covariates as a float array [N, C] (C may be 0)."""
        return self.frame[self.covariates].to_numpy(float).reshape(len(self.frame), len(self.covariates))

    def __len__(self) -> int:
        return len(self.frame)


# ------------------------------------------------------------------------------------ reading files
def read_layer(path: str | os.PathLike[str]) -> tuple[pd.DataFrame, Any, str | None]:
    """The attribute table of a file, its polygons (or None) and the CRS kind a vector file declares.

    Point geometries become columns ``geom_x``/``geom_y`` (the coordinates detection takes first);
    polygon layers get their centroids there (representative points for lon/lat) and keep the polygons.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix in TABLE_SUFFIXES:
        try:
            frame = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
        except Exception as exc:  # pandas/pyarrow raise many types for a bad file
            raise DataError(f"{path}: not a readable {suffix[1:]} table ({_first_line(exc)})") from None
        return _nonempty(frame, path), None, None
    if suffix in VECTOR_SUFFIXES or path.name.endswith(".dbf"):
        return _read_vector(path)
    raise DataError(
        f"{path}: unsupported file type {suffix!r}; expected .csv, .parquet, .geojson, .shp or .gpkg"
    )


def _read_vector(path: Path) -> tuple[pd.DataFrame, Any, str | None]:
    import geopandas as gpd

    if path.suffix.lower() == ".dbf" and path.with_suffix(".shp").is_file():
        path = path.with_suffix(".shp")
    try:
        layer = gpd.read_file(path)
    except Exception as exc:  # pyogrio raises its own errors for malformed files
        raise DataError(f"{path}: not a readable vector layer ({_first_line(exc)})") from None
    _nonempty(layer, path)
    if layer.geometry is None or layer.geometry.isna().any() or layer.geometry.is_empty.any():
        raise DataError(
            f"{path}: field 'geometry' is missing or empty for some features; expected points or polygons"
        )
    kinds = set(layer.geom_type)
    crs_kind = None
    if layer.crs is not None:
        crs_kind = "lonlat" if layer.crs.is_geographic else "projected"
    frame = pd.DataFrame(layer.drop(columns=layer.geometry.name))
    polygons = None
    if kinds <= {"Point"}:
        points = layer.geometry
    elif kinds <= {"Polygon", "MultiPolygon"}:
        polygons = layer.geometry.reset_index(drop=True)
        points = layer.geometry.representative_point() if crs_kind == "lonlat" else layer.geometry.centroid
    else:
        raise DataError(
            f"{path}: field 'geometry' has types {sorted(kinds)}; expected Point or Polygon features"
        )
    frame[GEOM_X], frame[GEOM_Y] = points.x.to_numpy(), points.y.to_numpy()
    return frame.reset_index(drop=True), polygons, crs_kind


def _nonempty(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    if len(frame) == 0:
        raise DataError(f"{path}: no rows; expected a table of points")
    return frame


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


# ------------------------------------------------------------------------------------ validation
def read_spatial(
    path: str | os.PathLike[str],
    target: str | list[str] | None = None,
    coords: tuple[str, str] | str | None = None,
    covariates: list[str] | str | None = None,
    crs: str = "auto",
    k: int = 8,
    duplicates: str = "error",
) -> SpatialData:
    """Read ``path`` and validate it as a point layer with ``target`` (see :func:`prepare`)."""
    frame, polygons, declared = read_layer(path)
    if crs == "auto" and declared is not None:
        crs = declared
    return prepare(
        frame,
        target,
        coords,
        covariates,
        crs=crs,
        k=k,
        source=str(path),
        polygons=polygons,
        declared_by_file=declared is not None,
        duplicates=duplicates,
    )


def _names(value: str | list[str] | tuple[str, ...] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


def detect_coords(
    frame: pd.DataFrame, source: str = "<frame>", exclude: tuple[str, ...] = ()
) -> tuple[str, str]:
    """The (x, y) columns: lon/lat, x/y, easting/northing names (case-insensitive), never a target."""
    lower = {str(c).lower(): str(c) for c in frame.columns if str(c) not in exclude}
    for xs, ys in (
        ((GEOM_X,), (GEOM_Y,)),
        (("longitude", "lon", "lng", "long"), ("latitude", "lat")),
        (("x", "coord_x"), ("y", "coord_y")),
        (("easting",), ("northing",)),
    ):
        x = next((lower[n] for n in xs if n in lower), None)
        y = next((lower[n] for n in ys if n in lower), None)
        if x and y:
            return x, y
    raise DataError(
        f"{source}: no coordinate columns found (looked for longitude/latitude, lon/lat, x/y, "
        f"easting/northing); "
        f"name them with --coords X,Y"
    )


def _numeric(frame: pd.DataFrame, column: str, source: str, what: str) -> np.ndarray:
    if column not in frame.columns:
        raise DataError(
            f"{source}: column {column!r} ({what}) not found; columns are "
            f"{', '.join(map(str, frame.columns))}"
        )
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna() | ~np.isfinite(values.to_numpy(float, na_value=np.nan))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raw = frame[column].iloc[row]
        kind = "NaN/empty" if pd.isna(raw) else f"non-numeric {str(raw)[:30]!r}"
        raise DataError(
            f"{source}: column {column!r} ({what}) has {int(bad.sum())} {kind.split(' ')[0]} value(s) "
            f"(first at row {row}: {kind}); expected finite numbers"
        )
    return values.to_numpy(float)


def prepare(
    frame: pd.DataFrame,
    target: str | list[str] | None,
    coords: tuple[str, str] | str | None = None,
    covariates: list[str] | str | None = None,
    crs: str = "auto",
    k: int = 8,
    source: str = "<frame>",
    polygons: Any = None,
    declared_by_file: bool = False,
    require_target: bool = True,
    duplicates: str = "error",
    lat0: float | None = None,
) -> SpatialData:
    """Validate a table as a point layer; ``covariates=None`` takes every other numeric column.

    ``lat0``: the reference latitude of the lon/lat projection (default: this table's mean latitude); give
    the layer's own when preparing a subset of it or new points for a model fitted on it.

    ``duplicates="keep"`` accepts shared locations (California's block groups share 8,050 of 20,640
    rounded centroids); the default refuses them, since a point's neighbours are then ambiguous.
    """
    if crs not in CRS_KINDS:
        raise DataError(f"{source}: crs {crs!r}; expected one of {', '.join(CRS_KINDS)}")
    frame = frame.reset_index(drop=True)
    targets = _names(target)
    coord_names = _names(coords) if coords is not None else list(detect_coords(frame, source, tuple(targets)))
    if len(coord_names) != 2:
        raise DataError(f"{source}: --coords {coords!r}; expected two column names X,Y")
    cx, cy = coord_names
    x = _numeric(frame, cx, source, "x coordinate")
    y = _numeric(frame, cy, source, "y coordinate")
    crs = _coordinate_kind(x, y, cx, cy, crs, source, declared_by_file)

    if require_target and not targets:
        raise DataError(f"{source}: no target column given; expected --target COL")
    for name in targets:
        values = _numeric(frame, name, source, "target")
        if np.ptp(values) == 0:
            raise DataError(
                f"{source}: target column {name!r} is constant ({values[0]:g}); expected varying values"
            )
    used = {cx, cy, *targets}
    if covariates is None:
        covs = [
            str(c)
            for c in frame.columns
            if c not in used
            and pd.api.types.is_numeric_dtype(frame[c])
            and str(c).lower() not in {"id", "fid", "station", "index"}
            and frame[c].notna().all()
        ]
    else:
        covs = _names(covariates)
    for name in covs:
        if name in used:
            raise DataError(
                f"{source}: column {name!r} is both a covariate and a target/coordinate; expected it once"
            )
        _numeric(frame, name, source, "covariate")

    xy = np.column_stack([x, y])
    if crs == "lonlat":
        lat0 = float(y.mean()) if lat0 is None else float(lat0)
        xy = np.column_stack([x * np.cos(np.deg2rad(lat0)), y])
    else:
        lat0 = None
    if duplicates == "error":
        _check_duplicates(xy, frame, cx, cy, source)
    if len(frame) <= k:
        raise DataError(
            f"{source}: {len(frame)} points but k={k} neighbours; expected more points than neighbours"
        )
    clean = frame.copy()
    for name in (cx, cy, *targets, *covs):
        clean[name] = pd.to_numeric(clean[name])
    return SpatialData(clean, xy, targets, covs, (cx, cy), crs, source, polygons, lat0=lat0)


def _coordinate_kind(
    x: np.ndarray, y: np.ndarray, cx: str, cy: str, crs: str, source: str, by_file: bool
) -> str:
    in_range = bool(np.all(np.abs(x) <= 180) and np.all(np.abs(y) <= 90))
    named_lonlat = cx.lower() in LONLAT_X and cy.lower() in LONLAT_Y
    by_name = crs == "auto" and named_lonlat
    if by_name:
        crs = "lonlat"  # columns named lon/lat are checked as such (planar grids: --crs projected)
    if crs == "lonlat" and not in_range:
        bad_x = np.abs(x) > 180
        col, row = (
            (cx, int(np.flatnonzero(bad_x)[0]))
            if bad_x.any()
            else (cy, int(np.flatnonzero(np.abs(y) > 90)[0]))
        )
        value = x[row] if col == cx else y[row]
        hint = (
            "the file's CRS is geographic"
            if by_file
            else ("named as lon/lat" if by_name else "declared lon/lat")
        )
        raise DataError(
            f"{source}: column {col!r} has {value:g} at row {row} ({hint}); expected longitude in "
            f"[-180, 180] and latitude in [-90, 90] (projected coordinates? use --crs projected)"
        )
    if crs == "projected" and in_range and (by_file or named_lonlat) and np.ptp(x) < 10 and np.ptp(y) < 10:
        why = "the file's CRS is projected" if by_file else "declared projected"
        raise DataError(
            f"{source}: columns {cx!r}/{cy!r} span {np.ptp(x):.3g} x {np.ptp(y):.3g} units inside the "
            f"degree range ({why}); expected metres or feet — these look like lon/lat (use --crs lonlat)"
        )
    if crs == "auto":
        return "lonlat" if (named_lonlat and in_range) else "projected"
    return crs


def _check_duplicates(xy: np.ndarray, frame: pd.DataFrame, cx: str, cy: str, source: str) -> None:
    keys = pd.DataFrame(xy).round(12)
    dup = keys.duplicated(keep=False).to_numpy()
    if dup.any():
        rows = np.flatnonzero(dup)
        first = rows[0]
        twin = next(r for r in rows[1:] if np.allclose(xy[r], xy[first]))
        raise DataError(
            f"{source}: columns {cx!r}/{cy!r}: rows {first} and {twin} share the location "
            f"({frame[cx].iloc[first]}, {frame[cy].iloc[first]}); expected distinct locations "
            f"({int(dup.sum())} rows duplicated; aggregate or jitter them first)"
        )


# ------------------------------------------------------------------------------------ data sets
def baltimore() -> SpatialData:
    """libpysal's Baltimore house sales (211 points, PRICE in $1000, X/Y planar): the embedded default."""
    from libpysal.examples import get_path

    path = Path(get_path("baltim.dbf"))
    frame, _, _ = read_layer(path.with_suffix(".shp"))
    covariates = [
        "NROOM",
        "NBATH",
        "AGE",
        "SQFT",
        "LOTSZ",
        "PATIO",
        "FIREPL",
        "AC",
        "GAR",
        "DWELL",
        "BMENT",
        "CITCOU",
    ]
    return prepare(frame, "PRICE", ("X", "Y"), covariates, crs="projected", source=str(path))


def data_root() -> Path | None:
    """The team's reference data: ``$GENFORGE_DATA`` or ``../shared/data`` beside the project
    (None if absent)."""
    env = os.environ.get(DATA_ENV)
    root = Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "data"
    return root if root.is_dir() else None


REFERENCE = {
    "toy1": ("spacegan/toy1.csv", "y", ("longitude", "latitude"), ["z"], "projected"),
    "toy2": ("spacegan/toy2.csv", "y", ("longitude", "latitude"), ["z"], "projected"),
    "california": (
        "spacegan/houses1990.csv",
        "houseValue",
        ("longitude", "latitude"),
        ["income", "houseAge", "rooms", "bedrooms", "population", "households"],
        "lonlat",
    ),
}


def reference(name: str, root: Path | None = None) -> SpatialData:
    """One of SpaceGAN's data sets from the reference folder: toy1, toy2 (grids) or california."""
    if name not in REFERENCE:
        raise DataError(f"reference data {name!r}: expected one of {', '.join(REFERENCE)}")
    root = root or data_root()
    if root is None:
        raise DataError(
            f"reference data {name!r}: no reference folder (set ${DATA_ENV} or place ../shared/data)"
        )
    rel, target, coords, covs, crs = REFERENCE[name]
    return read_spatial(
        root / rel, target, coords, covs, crs=crs, duplicates="keep" if name == "california" else "error"
    )
