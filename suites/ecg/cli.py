"""``genforge ecg ...``: download, train, score, evaluate, demo (typer app ``app``), and ``run_demo``.

Imports are lazy: the core CLI loads this module at start-up to register the sub-command, so it must
not pull in torch, wfdb or neurokit2 until a command runs. Expected mistakes raise
:class:`~genforge.errors.GenforgeError`; the core CLI prints them as one line and exits with code 2.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import typer

app = typer.Typer(
    help="ECG: find abnormal heartbeats in long recordings (beat shape + RR timing; a VAE explains).",
    no_args_is_help=True,
    add_completion=False,
)

SIMULATED = "SIMULATED"

# detector options shared by `train` and `evaluate`
ARCHITECTURE_OPTION = typer.Option(
    "mlp", "--architecture", help="VAE kind: mlp (default), conv1d (plain convs) or conv1d-residual"
)
NOISE_SCALING_OPTION = typer.Option(
    True,
    "--noise-scaling/--no-noise-scaling",
    help="Read each beat's deviation in units of its segment's noise where that is above the usual",
)
PATIENT_WEIGHT_OPTION = typer.Option(
    1.0,
    "--patient-weight",
    help="Weight of the same-record term: distance to the training beats of the beat's own record "
    "(patient-adaptive; silent for records not in training). 0 turns it off",
)


def _echo(msg: str) -> None:
    typer.echo(msg, err=True)


def _threads() -> None:
    import torch

    torch.set_num_threads(max(1, min(torch.get_num_threads(), 2)))


@app.command()
def download(
    database: str = typer.Argument(..., help="PhysioNet database name, e.g. mitdb"),
    dir: Path = typer.Option(..., "--dir", help="Folder to download into"),
    records: str = typer.Option(None, "--records", help="Comma-separated record names (default: all)"),
) -> None:
    """Download a PhysioNet database with wfdb (needs network; nothing else in genforge downloads)."""
    from genforge.ecg.data import download as dl

    names = [r.strip() for r in records.split(",")] if records else None
    out = dl(database, dir, names)
    typer.echo(f"downloaded {database} into {out}")


@app.command()
def train(
    data: Path = typer.Option(
        None, "--data", help="Folder of WFDB records with .atr (default: $GENFORGE_DATA)"
    ),
    records: str = typer.Option("DS1", "--records", help="DS1, DS2, all, or a comma list like 101,106"),
    out: Path = typer.Option(..., "--out", help="Model folder to write"),
    peaks: str = typer.Option("reference", "--peaks", help="Beat positions: reference (.atr) or detect"),
    architecture: str = ARCHITECTURE_OPTION,
    max_steps: int = typer.Option(800, "--max-steps", min=1, help="Training steps"),
    target_far: float = typer.Option(0.01, "--target-far", help="False-alarm rate on held-out normal beats"),
    noise_scaling: bool = NOISE_SCALING_OPTION,
    patient_weight: float = PATIENT_WEIGHT_OPTION,
    calibration_folds: int = typer.Option(
        4,
        "--calibration-folds",
        help="Set the new-record threshold on patients held out in this many folds of the training records "
        "(one extra fit per fold); 0: one threshold for every record",
    ),
    seed: int = typer.Option(0, "--seed"),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace whatever --out holds (another model, other settings)"
    ),
) -> None:
    """Train the detector on the normal beats (reference annotations decide) of the named records.

    A folder holding anything else (another model, a model trained with other settings) is refused unless
    --overwrite is given; nothing is written before the model is trained."""
    _threads()
    from genforge.ecg.data import data_root, parse_records_option
    from genforge.ecg.models import ECGAnomalyDetector
    from genforge.ecg.preprocess import load_beats
    from genforge.errors import GenforgeError
    from genforge.outputs import check_claim, output_job
    from genforge.training import distributed as dist

    if not 0.0 < target_far < 1.0:
        raise GenforgeError(f"--target-far {target_far}: expected a false-alarm rate between 0 and 1")
    if patient_weight < 0:
        raise GenforgeError(f"--patient-weight {patient_weight}: expected 0 or more")
    root = data_root(data)
    job = {
        "data": str(Path(root).resolve()),
        "records": records,
        "peaks": peaks,
        "architecture": architecture,
        "max_steps": max_steps,
        "target_far": target_far,
        "noise_scaling": noise_scaling,
        "patient_weight": patient_weight,
        "seed": seed,
        "calibration_folds": calibration_folds,
    }
    check_claim(out, "genforge ecg train", job, overwrite=overwrite, resume=False)  # before any work
    names = parse_records_option(records, root)
    _echo(f"reading the beats of {len(names)} records (cached after the first run)")
    beats = load_beats(root, names, peaks=peaks, progress=True)
    normal = beats[beats["aami"] == "N"].reset_index(drop=True)
    if len(normal) < 50:
        raise GenforgeError(
            f"--records {records}: only {len(normal)} normal beats with annotations; expected more"
        )
    _echo(f"training on {len(normal)} normal beats of {len(names)} records")
    det = ECGAnomalyDetector(
        architecture=architecture,
        max_steps=max_steps,
        target_far=target_far,
        noise_scaling=noise_scaling,
        patient_weight=patient_weight,
        calibration_folds=calibration_folds,
        seed=seed,
        progress=True,  # the training engine's bar (on a terminal)
    ).fit(normal)
    if dist.is_main():
        with output_job(out, "genforge ecg train", job, overwrite=overwrite, resume=False):
            det.save(out)
        typer.echo(
            f"model written to {out} (threshold {det.threshold_:.3f} for {target_far:.1%} false alarms on "
            f"held-out beats of the training records; {det.threshold_new_:.3f} for new records)"
        )
        typer.echo(_expected_far_line(target_far, det.new_patient_far_, det.training_records_ or []))
        if det.patient_ is not None:
            known = det.patient_.known_records()
            typer.echo(
                f"beats of these {len(known)} training records will also be compared with their own record's "
                "training beats when scored (patient-adapted); --patient-weight 0 turns that off"
            )


def _expected_far_line(target: float | None, new: dict | None, seen: list[str]) -> str:
    """What share of normal beats the model is expected to flag, for seen and for new records."""
    seen_part = f"records seen in training ({len(seen)}): about {target:.1%}" if seen else ""
    if new:
        new_part = (
            f"new records: {new['median']:.1%} median across {new['records']} held-out training patients "
            f"(25-75%: {new['q25']:.1%}-{new['q75']:.1%}, worst {new['max']:.1%}; pooled {new['pooled']:.1%})"
        )
        if new.get("upper") is not None and target is not None:
            new_part += (
                f", threshold set so that a new group of patients stays within {target:.1%} "
                f"with probability {new['bound']:.0%}"
            )
    else:
        new_part = (
            "new records: no held-out-patient calibration (--calibration-folds 0, or fewer training records "
            "than folds), so expect more than the target"
        )
    return "expected false alarms on normal beats: " + "; ".join(p for p in (seen_part, new_part) if p)


@app.command()
def score(
    paths: list[Path] = typer.Argument(
        ..., help="Records (with or without extension), CSV/Parquet, or folders"
    ),
    model: Path = typer.Option(..., "--model", help="Model folder written by 'genforge ecg train'"),
    out: Path = typer.Option(..., "--out", help="Output .parquet (one row per beat)"),
    lead: str = typer.Option(None, "--lead", help="Lead name (default MLII, else the first)"),
    fs: float = typer.Option(None, "--fs", help="Sampling rate (Hz) of CSV/Parquet signals"),
    peaks: str = typer.Option("detect", "--peaks", help="detect (neurokit2) or reference (.atr positions)"),
    threshold: float = typer.Option(
        None, "--threshold", help="Anomaly-score threshold (default: the model's)"
    ),
    work_dir: Path = typer.Option(
        None, "--work-dir", help="Folder for per-record parts (default: OUT.parts)"
    ),
) -> None:
    """Score every beat of the records; resumable; a WFDB annotation file of flagged beats per record."""
    _threads()
    from genforge.ecg.scoring import score_records

    report = score_records(
        list(paths),
        model,
        out,
        lead=lead,
        fs=fs,
        peaks=peaks,
        threshold=threshold,
        work_dir=work_dir,
        echo=_echo,
    )
    from genforge.training import distributed as dist

    if dist.is_main():
        typer.echo(
            f"{report.n_records} records in the output ({len(report.scored)} scored now by this process, "
            f"{len(report.resumed)} already done), {len(report.failed)} failed; {report.n_beats} beats, "
            f"{report.n_flagged} flagged -> {out if report.n_records else 'no output written'}"
        )
        if report.n_records:
            from genforge.ecg.scoring import ANN_EXT

            typer.echo(_expected_far_line(report.target_far, report.new_patient_far, report.seen_records))

            typer.echo(
                f"WFDB annotations of the flagged beats: {out.parent}{os.sep}<record>.{ANN_EXT} "
                f"(annotator '{ANN_EXT}'; copy them beside the records to view them in a WFDB viewer)"
            )
    if report.failed:
        raise typer.Exit(1)


@app.command()
def evaluate(
    data: Path = typer.Option(
        None, "--data", help="MIT-BIH folder (default: $GENFORGE_DATA); external: any annotated WFDB folder"
    ),
    protocol: str = typer.Option(
        "inter",
        "--protocol",
        help="inter, intra, ds1-cv (settings selection), ds1-cv-noise (the same folds with stress-test "
        "noise), inter-128 / inter-250 (DS2 resampled), noise (DS2 + stress-test noise, and the published "
        "stress records), external (--model on --data)",
    ),
    model: Path = typer.Option(None, "--model", help="external: the trained model folder to score with"),
    peaks: str = typer.Option(
        "detect", "--peaks", help="external: detect (neurokit2; coverage measured) or reference (.atr)"
    ),
    noise_data: Path = typer.Option(
        None, "--noise-data", help="noise, ds1-cv-noise: the nstdb folder (default: beside the MIT-BIH one)"
    ),
    json_path: Path = typer.Option(None, "--json", help="Write the results as JSON here"),
    folds: int = typer.Option(5, "--folds", help="intra: how many of the 5 folds to run"),
    baselines: bool = typer.Option(True, "--baselines/--no-baselines", help="Run the baselines too"),
    architecture: str = ARCHITECTURE_OPTION,
    max_steps: int = typer.Option(None, "--max-steps", help="Override the detector's training steps"),
    rr_weight: float = typer.Option(None, "--rr-weight", help="Override the weight of the RR timing score"),
    noise_scaling: bool = NOISE_SCALING_OPTION,
    patient_weight: float = PATIENT_WEIGHT_OPTION,
    cache_dir: Path = typer.Option(None, "--cache-dir", help="Beat cache (default: ~/.cache/genforge/ecg)"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """MIT-BIH evaluation: detector beside baselines and published anchors (prints a table)."""
    _threads()
    from genforge.ecg.evaluate import evaluate as run
    from genforge.ecg.evaluate import format_table
    from genforge.io import write_json_atomic

    params: dict[str, Any] = {
        "architecture": architecture,
        "noise_scaling": noise_scaling,
        "patient_weight": patient_weight,
    }
    if max_steps:
        params["max_steps"] = max_steps
    if rr_weight is not None:
        params["rr_weight"] = rr_weight
    result = run(
        data,
        protocol=protocol,
        params=params,
        folds=folds,
        baselines=baselines,
        cache_dir=cache_dir,
        seed=seed,
        log=_echo,
        progress=True,
        model=model,
        peaks=peaks,
        noise_dir=noise_data,
    )
    typer.echo(format_table(result))
    if json_path:
        write_json_atomic(json_path, result)
        typer.echo(f"results written to {json_path}")


@app.command()
def demo(
    out: Path = typer.Option(
        None,
        "--out",
        help="Folder for the SIMULATED demo outputs (default: $GENFORGE_RESULTS or genforge-results, "
        "/ ecg-demo-<time>; the dashboard's ECG page opens on the newest)",
    ),
    quick: bool = typer.Option(False, "--quick", help="Shorter records and training (well under a minute)"),
) -> None:
    """Run the detector end to end on SIMULATED ECG (no download needed), then say how to use real data."""
    _threads()
    if out is None:
        root = Path(os.environ.get("GENFORGE_RESULTS", "genforge-results")).expanduser()
        out = root / f"ecg-demo-{time.strftime('%Y%m%d-%H%M%S')}"
    metrics = run_demo(out, quick=quick)
    _echo(f"demo outputs in {out}")
    typer.echo(json.dumps(metrics, indent=2))


def run_demo(out_dir: Path, quick: bool = False) -> dict[str, Any]:
    """SIMULATED demo: two recordings of one simulated patient; train on the first one's normal beats, score
    the second; returns metrics.

    Every output says SIMULATED (record names, the metrics, the summary file)."""
    from genforge.ecg.data import read_record
    from genforge.ecg.evaluate import metrics as detection_metrics
    from genforge.ecg.models import ECGAnomalyDetector
    from genforge.ecg.preprocess import beat_table
    from genforge.ecg.scoring import record_summary, score_records
    from genforge.ecg.simulate import simulate_record
    from genforge.io import write_json_atomic, write_text_atomic

    started = time.perf_counter()
    out_dir = Path(out_dir)
    rec_dir = out_dir / "records"
    minutes = 4.0 if quick else 8.0
    train_path = simulate_record(rec_dir, f"{SIMULATED}_train", minutes=minutes, seed=1)
    # a second recording of the same simulated patient (beat shape and resting rate), other rhythm and noise:
    # trained on one simulated recording only, the detector knows one heart rate and one shape too well
    # for a different simulated patient (about 15-80% of normal beats flagged)
    test_path = simulate_record(rec_dir, f"{SIMULATED}_test", minutes=minutes, seed=2, patient_seed=1)
    beats = beat_table(read_record(train_path), peaks="detect")
    normal = beats[beats["aami"] == "N"].reset_index(drop=True)
    det = ECGAnomalyDetector(max_steps=200 if quick else 400, target_far=0.02).fit(normal)
    model_dir = out_dir / "model"
    det.save(model_dir)
    scores_path = out_dir / f"{SIMULATED}_scores.parquet"
    score_records([test_path], model_dir, scores_path, progress=False, echo=_echo)
    import pandas as pd

    table = pd.read_parquet(scores_path)
    labelled = table[table["aami"] != ""]
    m = detection_metrics(labelled["score"].to_numpy(), labelled["aami"].to_numpy())
    summary = record_summary(table)
    normal_flagged = float(labelled.loc[labelled["aami"] == "N", "flag"].mean())
    result = {
        "data": f"{SIMULATED} (neurokit2.ecg_simulate + injected premature ventricular and atrial beats)",
        "auroc": round(m["auroc"], 4),
        "per_class_auroc": {k: round(v, 4) for k, v in m["per_class_auroc"].items()},
        "beats": summary["beats"],
        "flagged_pct": round(float(summary["flagged_pct"]), 2),
        "normal_beats_flagged_pct": round(100.0 * normal_flagged, 2),
        "seconds": round(time.perf_counter() - started, 1),
        "outputs": {"scores": str(scores_path), "model": str(model_dir)},
    }
    write_json_atomic(out_dir / f"{SIMULATED}_metrics.json", result)
    howto = (
        f"{SIMULATED} ECG demo: these results come from simulated signals, not real recordings.\n"
        f"AUROC {result['auroc']:.3f} on {result['beats']} beats (V = premature ventricular, "
        f"S = premature atrial); {result['normal_beats_flagged_pct']:.1f}% of normal beats flagged.\n\n"
        "To run on real records (MIT-BIH, PhysioNet):\n"
        "  genforge ecg download mitdb --dir data/mitdb\n"
        "  genforge ecg train --data data/mitdb --records DS1 --out models/ecg\n"
        "  genforge ecg score data/mitdb --model models/ecg --out scores.parquet\n"
        "  genforge ecg evaluate --data data/mitdb --protocol inter --json inter.json\n"
    )
    write_text_atomic(out_dir / f"{SIMULATED}_README.txt", howto)
    print(howto, file=sys.stderr)
    return result
