"""``genforge geo ...``: train, augment, moran, evaluate, demo (typer app ``app``), and ``run_demo``.

Imports are lazy (the core CLI loads this module at start-up). Expected mistakes raise
:class:`~genforge.errors.GenforgeError`; the core CLI prints them as one line and exits with code 2.
Output files are written atomically, after every check has passed, so a failed command leaves nothing.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer

from genforge.errors import DataError

app = typer.Typer(
    help="Geo: SpaceGAN spatial data augmentation that keeps spatial autocorrelation.\n\n"
    "Example: genforge geo augment sales.csv --target price --n 10 --out more.csv",
    no_args_is_help=True,
    add_completion=False,
)

TARGET = typer.Option(..., "--target", help="Target column(s), comma-separated")
COORDS = typer.Option(None, "--coords", help="Coordinate columns X,Y (default: detected lon/lat or x/y)")
COVARIATES = typer.Option(
    None, "--covariates", help="Covariate columns A,B,... (default: other numeric columns)"
)
CRS = typer.Option("auto", "--crs", help="auto, lonlat or projected")
K = typer.Option(8, "--k", help="Neighbours in each point's condition and in the MIE weights")
STEPS = typer.Option(2000, "--max-steps", help="Generator steps")
SEED = typer.Option(0, "--seed")
OUTPUTS = (".csv", ".parquet", ".geojson")


def _echo(msg: str) -> None:
    typer.echo(msg, err=True)


def _threads() -> None:
    import torch

    torch.set_num_threads(1)


def _read(path: Path, target: str | None, coords: str | None, covariates: str | None, crs: str, k: int):
    from genforge.geo.data import read_spatial

    return read_spatial(path, target, coords, covariates, crs=crs, k=k)


def _check_output(out: Path, suffixes: tuple[str, ...]) -> None:
    if out.suffix.lower() not in suffixes:
        raise DataError(f"{out}: unsupported output type {out.suffix!r}; expected {', '.join(suffixes)}")


def write_layer(frame: Any, out: Path, coords: tuple[str, str], crs: str) -> Path:
    """Write a table as CSV, Parquet or GeoJSON points (atomically)."""
    from genforge.io import atomic_path, write_table_atomic

    if out.suffix.lower() == ".geojson":
        import geopandas as gpd

        layer = gpd.GeoDataFrame(
            frame,
            geometry=gpd.points_from_xy(frame[coords[0]], frame[coords[1]]),
            crs="EPSG:4326" if crs == "lonlat" else None,
        )
        with atomic_path(out) as tmp:
            layer.to_file(tmp, driver="GeoJSON", layer=out.stem)
        return out
    if out.suffix.lower() == ".csv":
        from genforge.io import write_text_atomic

        return write_text_atomic(out, frame.to_csv(index=False))
    return write_table_atomic(out, frame)


@app.command()
def train(
    file: Path = typer.Argument(..., help="CSV, Parquet, GeoJSON or shapefile of points or polygons"),
    target: str = TARGET,
    coords: str = COORDS,
    covariates: str = COVARIATES,
    crs: str = CRS,
    out: Path = typer.Option(..., "--out", help="Model folder to write"),
    k: int = K,
    max_steps: int = STEPS,
    select: str = typer.Option("mie", "--select", help="Checkpoint criterion: mie or rmse"),
    seed: int = SEED,
    calibrate_folds: int = typer.Option(
        0,
        "--calibrate-folds",
        help="Give draws at new points a calibrated 90% interval: this many more fits on block folds of "
        "the data, pooled out-of-fold scores (as genforge geo evaluate); 0 = off",
    ),
    block_layout: str = typer.Option(
        "kmeans",
        "--block-layout",
        help="Blocks of --calibrate-folds: kmeans (16 clusters of the coordinates, folds balanced by "
        "points) or grid (4 x 4 cells, dealt round-robin)",
    ),
) -> None:
    """Fit SpaceGAN and save it (resumable: a rerun with the same --out continues the training).

    Example: genforge geo train houses.csv --target price --coords lon,lat --out models/geo
    """
    from genforge.geo.models import SpaceGAN

    _threads()
    if calibrate_folds == 1 or calibrate_folds < 0:
        raise DataError(f"--calibrate-folds {calibrate_folds}: expected 0 (off) or at least 2")
    if block_layout not in ("kmeans", "grid"):
        raise DataError(f"--block-layout {block_layout!r}: expected kmeans or grid")
    data = _read(file, target, coords, covariates, crs, k)
    model = SpaceGAN(k=k, max_steps=max_steps, select=select, seed=seed)
    model.fit(data, out_dir=Path(out) / "training")
    if calibrate_folds:
        model.calibrate_blocks(folds=calibrate_folds, seed=seed, layout=block_layout)
    model.save(out)
    best = model.best_scores_[select]
    typer.echo(
        f"saved {out} (best {select} at step {best['step']}: rmse {best['rmse']:.4g}, mie {best['mie']:.4g})"
    )
    if calibrate_folds:
        half = ", ".join(f"{h:.4g}" for h in model.interval_["half"])
        typer.echo(
            f"90% interval at new points: mean +- {half} x local scale ({calibrate_folds} block folds)"
        )


@app.command()
def augment(
    file: Path = typer.Argument(..., help="CSV, Parquet, GeoJSON or shapefile of points or polygons"),
    target: str = typer.Option(None, "--target", help="Target column(s) (needed unless --model)"),
    coords: str = COORDS,
    covariates: str = COVARIATES,
    crs: str = CRS,
    n: int = typer.Option(10, "--n", help="Generated rows per input row"),
    out: Path = typer.Option(..., "--out", help="Output FILE.csv, .parquet or .geojson"),
    model: Path = typer.Option(None, "--model", help="A trained model folder (skips fitting)"),
    k: int = K,
    max_steps: int = STEPS,
    seed: int = SEED,
) -> None:
    """Fit (or load) SpaceGAN and write K generated rows per input row, with a ``draw`` column.

    Example: genforge geo augment toy1.csv --target y --coords longitude,latitude \
    --crs projected --n 20 --out g.csv
    """
    from genforge.geo.models import SpaceGAN

    _threads()
    _check_output(out, OUTPUTS)
    if n < 1:
        raise DataError(f"--n {n}: expected a positive number of draws")
    if model is not None:
        est = SpaceGAN.load(model)
        from genforge.geo.data import prepare, read_layer

        frame, _, _ = read_layer(file)
        data = prepare(
            frame,
            None,
            coords or tuple(est.coords_),
            covariates or est.covariates_,
            crs=est.crs_,
            k=0,
            source=str(file),
            require_target=False,
            duplicates="keep",
        )
        generated = est.sample(n_per_point=n, frame=data.frame, seed=seed)
    else:
        data = _read(file, target, coords, covariates, crs, k)
        est = SpaceGAN(k=k, max_steps=max_steps, seed=seed).fit(data)
        generated = est.sample(n_per_point=n, seed=seed)
    write_layer(generated, out, tuple(est.coords_), est.crs_)
    typer.echo(f"wrote {len(generated)} rows ({n} per input row) to {out}")


@app.command()
def moran(
    file: Path = typer.Argument(..., help="CSV, Parquet, GeoJSON or shapefile"),
    column: str = typer.Option(..., "--column", help="Column to test"),
    weights: str = typer.Option("knn:8", "--weights", help="knn:K, band:D, queen or rook"),
    coords: str = COORDS,
    crs: str = CRS,
    permutations: int = typer.Option(999, "--permutations", help="Permutations for pseudo p-values"),
    out: Path = typer.Option(None, "--out", help="Per-point table: FILE.csv or .geojson"),
) -> None:
    """Global and local Moran's I (esda) with HH/LL/HL/LH clusters and pseudo p-values.

    Example: genforge geo moran baltim.shp --column PRICE --weights queen --out clusters.geojson
    """
    from genforge.geo.data import prepare, read_layer
    from genforge.geo.spatial import moran as moran_stats
    from genforge.geo.spatial import weights as build_weights

    if out is not None:
        _check_output(out, (".csv", ".geojson"))
    frame, polygons, declared = read_layer(file)
    data = prepare(
        frame,
        column,
        coords,
        [],
        crs=declared or crs,
        k=1,
        source=str(file),
        polygons=polygons,
        declared_by_file=declared is not None,
        duplicates="keep",
    )
    w = build_weights(data.xy, weights, data.polygons)
    summary, table = moran_stats(data.y[:, 0], w, permutations=permutations)
    typer.echo(
        f"global Moran's I of {column}: {summary['I']:.4f} (expected {summary['expected']:.4f}, "
        f"z {summary['z']:.2f}, p_sim {summary.get('p_sim', float('nan')):.4f})"
    )
    counts = table.get("cluster", table["quadrant"]).value_counts().to_dict()
    typer.echo("local clusters (p < 0.05): " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if out is not None:
        result = data.frame.copy()
        for name in table.columns:
            result[name] = table[name].to_numpy()
        write_layer(result, out, data.coords, data.crs)
        typer.echo(f"wrote {out}")


@app.command()
def evaluate(
    data: Path = typer.Option(None, "--data", help="Point layer (default: the reference data set --dataset)"),
    target: str = typer.Option(None, "--target", help="Target column (with --data)"),
    dataset: str = typer.Option(None, "--dataset", help="Reference data: toy1, toy2 or california"),
    coords: str = COORDS,
    covariates: str = COVARIATES,
    crs: str = CRS,
    k: int = K,
    max_steps: int = STEPS,
    check_every: int = typer.Option(100, "--check-every", help="Steps between MIE/RMSE checks"),
    n_draws: int = typer.Option(20, "--draws", help="Draws averaged at each check"),
    seeds: str = typer.Option("0,1,2", "--seeds", help="Comma-separated seeds"),
    baselines: str = typer.Option(
        "original,nonspatial,linear,kriging",
        "--baselines",
        help="Which baselines (original: the paper's code, SGD; original_adam: its configuration on the core "
        "engine, Adam)",
    ),
    json_out: Path = typer.Option(None, "--json", help="Write the result as JSON (resumes a matching run)"),
    holdout_steps: int = typer.Option(
        None, "--holdout-steps", help="Steps of the block hold-out models (default: --max-steps)"
    ),
    holdout: str = typer.Option(
        "cv",
        "--holdout",
        help="Coverage protocol: cv (block cross-validation over the whole map, every point held out once) "
        "or quarter (one quarter of the blocks held out, the first sessions' protocol)",
    ),
    holdout_folds: int = typer.Option(4, "--holdout-folds", help="Folds of the cv hold-out"),
    block_layout: str = typer.Option(
        "kmeans",
        "--block-layout",
        help="Blocks of the cv folds and of the quarter protocol's calibration: kmeans (clusters of the "
        "coordinates, folds balanced by points) or grid (cells of the 4 x 4 grid, the fourth session's)",
    ),
    extra_weights: str = typer.Option(
        "",
        "--extra-weights",
        help="Comma-separated weights also scored for MIE, e.g. band:paper (the band of SpaceGAN's code)",
    ),
) -> None:
    """SpaceGAN's protocol (mean of draws, RMSE and MIE) beside the baselines, plus Moran's I
    of single draws and hold-out coverage.

    Examples: genforge geo evaluate --dataset toy1 --max-steps 3000 --json toy1.json;
    genforge geo evaluate --data houses.csv --target price --k 50 --seeds 0
    """
    from genforge.geo.data import reference
    from genforge.geo.evaluate import Protocol, format_table
    from genforge.geo.evaluate import evaluate as run

    _threads()
    if (data is None) == (dataset is None):
        raise DataError(
            "evaluate: give exactly one of --data FILE (with --target) or --dataset toy1|toy2|california"
        )
    names = [b.strip() for b in baselines.split(",") if b.strip()]
    unknown = sorted(set(names) - {"original", "original_adam", "nonspatial", "linear", "kriging"})
    if unknown:
        raise DataError(
            f"--baselines: unknown {', '.join(unknown)}; expected original, original_adam, nonspatial, "
            "linear, kriging"
        )
    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        raise DataError(f"--seeds {seeds!r}: expected comma-separated integers") from None
    layer = reference(dataset) if dataset else _read(data, target, coords, covariates, crs, k)
    protocol = Protocol(
        k=k,
        max_steps=max_steps,
        check_every=check_every,
        n_draws=n_draws,
        seeds=seed_list,
        baselines=names,
        holdout_steps=holdout_steps,
        holdout=holdout,
        holdout_folds=holdout_folds,
        block_layout=block_layout,
        extra_weights=[w.strip() for w in extra_weights.split(",") if w.strip()],
    )
    result = run(layer, protocol, json_path=json_out, echo=_echo)
    typer.echo(format_table(result, dataset))


@app.command()
def demo(
    out: Path = typer.Option(Path("runs/geo-demo"), "--out", help="Folder for the demo's files"),
    quick: bool = typer.Option(False, "--quick", help="A shorter run (seconds)"),
) -> None:
    """Baltimore house sales (libpysal, embedded): fit SpaceGAN, augment, compare Moran's I.

    Example: genforge geo demo --quick
    """
    _threads()
    result = run_demo(out, quick=quick)
    typer.echo(json.dumps(result, indent=2))


def run_demo(out_dir: Path, quick: bool = False) -> dict[str, Any]:
    """Fit SpaceGAN on libpysal's Baltimore house sales (211 points), draw 10 augmented copies, and score
    the mean of draws (RMSE, MIE) and each draw's global Moran's I against the real prices."""
    import numpy as np
    import torch

    from genforge.geo.data import baltimore
    from genforge.geo.evaluate import LinearGenerator
    from genforge.geo.models import SpaceGAN, score_mean
    from genforge.geo.spatial import global_moran_torch
    from genforge.io import write_json_atomic

    started = time.perf_counter()
    out_dir = Path(out_dir)
    data = baltimore()
    model = SpaceGAN(k=8, max_steps=300 if quick else 2000, n_draws=10, progress=not quick, seed=0).fit(data)
    model.save(out_dir / "model")
    generated = model.sample(n_per_point=10, seed=1)
    write_layer(generated, out_dir / "baltimore_augmented.csv", tuple(model.coords_), model.crs_)
    draws = model.sample_array(10, seed=1)[:, :, 0]
    real_i = float(global_moran_torch(torch.as_tensor(data.y[:, 0]), model.W_))
    draw_i = global_moran_torch(torch.as_tensor(draws), model.W_).numpy()
    cond = model.hood_.condition()
    linear = score_mean(
        data.y, LinearGenerator().fit(model.hood_, cond, data.y).draws(cond, 10, 0).mean(0), model.W_
    )
    best = model.best_scores_["mie"]
    result = {
        "data": "Baltimore house sales (libpysal baltim, 211 points, PRICE)",
        "rmse": round(best["rmse"], 4),
        "mie": round(best["mie"], 4),
        "linear_rmse": round(linear["rmse"], 4),
        "linear_mie": round(linear["mie"], 4),
        "moran_global_real": round(real_i, 4),
        "moran_global_draws_mean": round(float(draw_i.mean()), 4),
        "moran_global_draws_max_abs_error": round(float(np.abs(draw_i - real_i).max()), 4),
        "rows_generated": len(generated),
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_json_atomic(out_dir / "summary.json", result)
    return result
