"""SIMULATED ECG for the demo on a fresh machine: neurokit2's ``ecg_simulate`` plus injected ectopic beats.

A normal beat shape is taken from ``neurokit2.ecg_simulate`` (ECGSYN); a recording is then assembled
beat by beat with a slowly varying heart rate, baseline wander and noise, and two kinds of injected
abnormal beats with reference labels:

- ``V`` (premature ventricular): early, followed by a compensatory pause, wide QRS, inverted T, no P wave;
- ``A`` (premature atrial): early, followed by a short pause, with a normal shape (timing only).

The record is written as WFDB (``.hea``/``.dat``/``.atr``, 360 Hz, lead "MLII") so the demo runs through
exactly the same readers as real data. Record names and header comments say SIMULATED.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FS = 360


def _normal_template(seed: int) -> np.ndarray:
    """Median ECGSYN beat around its R peak, 0.35 s before to 0.55 s after, tapered to zero at both ends."""
    import neurokit2 as nk

    x = nk.ecg_simulate(duration=30, sampling_rate=FS, heart_rate=70, noise=0.0, random_state=seed)
    pre, post = int(0.35 * FS), int(0.55 * FS)
    peaks = nk.ecg_findpeaks(x, sampling_rate=FS)["ECG_R_Peaks"]
    peaks = peaks[(peaks > pre) & (peaks < len(x) - post)]
    beat = np.median(np.stack([x[p - pre : p + post] for p in peaks]), axis=0)
    beat = beat - np.median(beat[:20])
    taper = np.ones_like(beat)
    n = 20
    taper[:n], taper[-n:] = np.linspace(0, 1, n), np.linspace(1, 0, n)
    return beat * taper


def _ventricular(normal: np.ndarray) -> np.ndarray:
    """A wide, tall, P-less complex with a discordant (inverted) T wave, made from the normal beat."""
    pre = int(0.35 * FS)
    t = np.arange(len(normal)) - pre
    stretched = np.interp(t / 2.2 + pre, np.arange(len(normal)), normal)
    v = 1.4 * stretched
    v[t > int(0.12 * FS)] *= -1.0  # discordant T wave
    v[: pre - int(0.12 * FS)] = 0.0  # no P wave
    n = 80
    v[-n:] *= 0.5 * (1 + np.cos(np.linspace(0, np.pi, n)))  # taper the stretched tail to zero
    return v


def simulate_record(
    directory: str | os.PathLike[str],
    name: str = "SIMULATED_1",
    minutes: float = 10.0,
    p_ventricular: float = 0.04,
    p_atrial: float = 0.04,
    seed: int = 0,
    patient_seed: int | None = None,
) -> Path:
    """Write one SIMULATED WFDB record (with reference ``.atr`` labels); return its path without extension.

    ``seed`` draws the rhythm, ectopic beats and noise; ``patient_seed`` (default: ``seed``) the beat shape
    and resting heart rate, so two records with one ``patient_seed`` are two recordings of the same
    simulated patient.
    """
    import wfdb

    rng = np.random.default_rng(seed)
    patient = seed if patient_seed is None else patient_seed
    normal = _normal_template(patient)
    vent = _ventricular(normal)
    pre = int(0.35 * FS)
    n_total = int(minutes * 60 * FS)
    signal = np.zeros(n_total + len(normal))
    positions, symbols = [], []
    t, prev_kind = 1.0 * FS, "N"
    base_rr = 60.0 / np.random.default_rng([patient, 1]).uniform(65, 80)  # the patient's resting rate
    while t < n_total - FS:
        kind = rng.choice(["N", "V", "A"], p=[1 - p_ventricular - p_atrial, p_ventricular, p_atrial])
        if prev_kind != "N":
            kind = "N"
        drift = 1 + 0.06 * np.sin(2 * np.pi * t / FS / 90.0)
        rr = base_rr * drift * rng.normal(1.0, 0.02) * FS
        if kind == "V":
            t_beat = t + 0.62 * rr
        elif kind == "A":
            t_beat = t + 0.70 * rr
        else:
            t_beat = t + (1.25 if prev_kind == "V" else 1.0) * rr if positions else t
        shape = vent if kind == "V" else normal * rng.normal(1.0, 0.03)
        i = int(round(t_beat))
        if i + len(shape) - pre >= len(signal):
            break
        signal[i - pre : i - pre + len(shape)] += shape
        positions.append(i)
        symbols.append(kind)
        t, prev_kind = t_beat, kind
    signal = signal[:n_total]
    time_s = np.arange(n_total) / FS
    signal += 0.1 * np.sin(2 * np.pi * 0.25 * time_s + rng.uniform(0, 6)) + rng.normal(0, 0.015, n_total)
    keep = np.array(positions) < n_total
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    wfdb.wrsamp(
        name,
        fs=FS,
        units=["mV"],
        sig_name=["MLII"],
        p_signal=signal[:, None],
        fmt=["16"],
        adc_gain=[1000.0],
        baseline=[0],
        comments=[
            "SIMULATED with neurokit2.ecg_simulate + injected "
            "ectopic beats (genforge demo); not a real recording"
        ],
        write_dir=str(out),
    )
    wfdb.wrann(
        name, "atr", np.array(positions)[keep], symbol=list(np.array(symbols)[keep]), write_dir=str(out)
    )
    return out / name


def train_demo_model(
    directory: str | os.PathLike[str], minutes: float = 4.0, max_steps: int = 200, seed: int = 1
) -> Path:
    """A small detector trained on the normal beats of one SIMULATED record (for trying things out only).

    Written to ``directory/model``; an existing model there is reused. Returns the model folder.
    """
    from genforge.ecg.data import read_record
    from genforge.ecg.models import ECGAnomalyDetector
    from genforge.ecg.preprocess import beat_table

    out = Path(directory)
    model_dir = out / "model"
    if (model_dir / "config.json").is_file() and (model_dir / "model.safetensors").is_file():
        return model_dir
    path = simulate_record(out / "records", "SIMULATED_train", minutes=minutes, seed=seed)
    beats = beat_table(read_record(path), peaks="detect")
    normal = beats[beats["aami"] == "N"].reset_index(drop=True)
    ECGAnomalyDetector(max_steps=max_steps, target_far=0.02, seed=seed).fit(normal).save(model_dir)
    return model_dir


@dataclass(frozen=True)
class DemoOutputs:
    """What a demo run left: its model folder and the folder of its SIMULATED records."""

    model: Path
    records: Path


def latest_demo_outputs(root: str | os.PathLike[str]) -> DemoOutputs | None:
    """The newest ECG demo run under ``root`` (``genforge demo`` writes ``<run>/ecg/``, ``genforge ecg
    demo`` writes ``ecg-demo-<time>/``); ``None`` when there is none. Only ``config.json`` is read: a
    folder counts when it holds an ECG detector checkpoint beside a ``records`` folder."""
    import json

    root = Path(root)
    if not root.is_dir():
        return None
    found = []
    for config in [
        *root.glob("model/config.json"),
        *root.glob("*/model/config.json"),
        *root.glob("*/ecg/model/config.json"),
    ]:
        run = config.parent.parent
        try:
            estimator = json.loads(config.read_text(encoding="utf-8")).get("extra", {}).get("estimator")
        except (OSError, ValueError, AttributeError):
            continue
        if str(estimator).rsplit(".", 1)[-1] == "ECGAnomalyDetector" and (run / "records").is_dir():
            found.append((config.stat().st_mtime, str(run), DemoOutputs(config.parent, run / "records")))
    return max(found)[2] if found else None
