"""ECG throughput on the CPU: one 30-minute MIT-BIH record end to end, model scoring alone, and scaling.

Figures (``--json PATH`` writes them):

- ``seconds_per_record``: read a 2-lead 30-minute record, band-pass, detect R peaks (neurokit2), cut beats,
  score them (goal <= 2 s); median of ``--repeats`` runs on record 100 after one warm-up;
- ``beats_per_second``: model scoring alone (``anomaly_score``) on already-extracted beats (goal >= 20,000),
  for the default detector (PCA+kNN shape term; its MLP VAE, kept for explanations, is not run by
  ``anomaly_score`` since state version 8) and, interleaved with it, the same detector with the plain 1-D
  conv VAE (``--architecture conv1d``) and the residual one (``conv1d-residual``): with the PCA+kNN term
  these rows differ only by noise. The detectors are trained on record 100 and score record 100, so the
  same-record term is active (the patient-adaptive case); ``beats_per_second_new_patient`` scores the
  same beats under another record name, where that term is silent;
- ``seconds_per_record_by_count``: mean seconds per record for 1, 8 and 48 records (should stay flat);
- ``beats_per_second_ds1_model``: scoring by a detector trained on the normal beats of the DS1 records
  (the size of a real model), new patient (``--no-ds1`` skips it); interleaved with it, the same detector
  with every training beat (~39,000) in the shape term's kNN reference (``shape_reference_size=None``, as
  state version 7 scored) instead of the default k-means-condensed ~4,000
  (``beats_per_second_ds1_model_full_reference``).

Published anchor: BeatGAN, 2.6 ms per beat (about 385 beats/s). The detectors are trained briefly on
record 100 only: scoring speed does not depend on how well a model is trained.

Run: ``python benchmarks/ecg_throughput.py [--data DIR] [--counts 1,8,48] [--json out.json]``
(one torch thread by default: these machines are shared; pass ``--threads`` to change).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    add_json_arg,
    add_threads_arg,
    interleave,
    print_table,
    ratio_median,
    set_threads,
    write_json,
)  # noqa: E402

BEATGAN_MS_PER_BEAT = 2.6


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="MIT-BIH folder (default: $GENFORGE_DATA)")
    parser.add_argument("--counts", default="1,8,48", help="record counts for the scaling figure")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats (medians are reported)")
    parser.add_argument("--no-ds1", action="store_true", help="skip the DS1-sized model's scoring figure")
    add_threads_arg(parser)
    add_json_arg(parser)
    args = parser.parse_args(argv)
    set_threads(args.threads)

    import warnings

    from genforge.ecg import ECGAnomalyDetector, beat_table, data_root, load_beats, read_record
    from genforge.ecg.data import PACED

    warnings.filterwarnings("ignore")
    root = data_root(
        args.data or os.environ.get("GENFORGE_DATA") or Path(__file__).resolve().parents[2] / "shared/data"
    )
    record = root / "100"

    train = load_beats(root, ["100"], peaks="reference", cache_dir=False, progress=False)
    train = train[train["aami"] == "N"].reset_index(drop=True)
    detectors = {
        arch: ECGAnomalyDetector(architecture=arch, max_steps=30).fit(train)
        for arch in ("mlp", "conv1d", "conv1d-residual")
    }
    det = detectors["mlp"]

    def end_to_end(path: Path = record) -> int:
        beats = beat_table(read_record(path), peaks="detect")
        return len(det.anomaly_score(beats))

    end_to_end()  # warm-up: neurokit2's import and torch's first call are not per-record costs
    e2e = [interleave({"e2e": end_to_end}, repeats=1, warmup=0)["e2e"][0] for _ in range(args.repeats)]
    seconds_per_record = statistics.median(e2e)

    beats = beat_table(read_record(record), peaks="detect")
    big = beats.loc[beats.index.repeat(10)].reset_index(drop=True)  # ~22,700 beats per call
    new_patient = big.assign(record="not-in-training")
    times = interleave(
        {
            **{arch: (lambda d=d: d.anomaly_score(big)) for arch, d in detectors.items()},
            "mlp, new patient": lambda: det.anomaly_score(new_patient),
        },
        repeats=args.repeats,
    )
    bps = {arch: len(big) / statistics.median(t) for arch, t in times.items()}
    ds1_bps = ds1_full_bps = ds1_refs = None
    if not args.no_ds1:
        from genforge.ecg.data import DS1

        ds1 = load_beats(root, list(DS1), peaks="reference", cache_dir=None, progress=False)
        ds1 = ds1[ds1["aami"] == "N"].reset_index(drop=True)
        real = ECGAnomalyDetector(max_steps=30, calibration_folds=0).fit(ds1)
        full = ECGAnomalyDetector(max_steps=30, calibration_folds=0, shape_reference_size=None).fit(ds1)
        ds1_times = interleave(
            {
                "ds1": lambda: real.anomaly_score(new_patient),
                "ds1 full": lambda: full.anomaly_score(new_patient),
            },
            repeats=args.repeats,
        )
        ds1_bps = len(big) / statistics.median(ds1_times["ds1"])
        ds1_full_bps = len(big) / statistics.median(ds1_times["ds1 full"])
        ds1_refs = (len(real.shape_reference_), len(full.shape_reference_))

    names = sorted(h.stem for h in root.glob("*.hea") if h.stem not in PACED) + list(PACED)
    scaling = {}
    for count in [int(c) for c in args.counts.split(",") if c]:
        chosen = (names * (count // len(names) + 1))[:count]
        start = time.perf_counter()
        for n in chosen:
            end_to_end(root / n)
        scaling[str(count)] = (time.perf_counter() - start) / count

    rows = [
        {
            "figure": "seconds_per_record (read+filter+peaks+beats+score)",
            "value": seconds_per_record,
            "goal": "<= 2",
        },
        {"figure": "beats_per_second, default detector (PCA+kNN)", "value": bps["mlp"], "goal": ">= 20000"},
        {
            "figure": "beats_per_second, default detector, record not in training",
            "value": bps["mlp, new patient"],
            "goal": ">= 20000",
        },
        *(
            row
            for arch in ("conv1d", "conv1d-residual")
            for row in (
                {"figure": f"beats_per_second, with {arch} VAE", "value": bps[arch], "goal": ">= 20000"},
                {
                    "figure": f"{arch} / MLP scoring time (median ratio)",
                    "value": ratio_median(times["mlp"], times[arch]),
                    "goal": "",
                },
            )
        ),
        *(
            [
                {
                    "figure": f"beats_per_second, DS1-sized model, new patient ({ds1_refs[0]} ref. points)",
                    "value": ds1_bps,
                    "goal": ">= 20000",
                },
                {
                    "figure": f"the same, every training beat as reference ({ds1_refs[1]} points)",
                    "value": ds1_full_bps,
                    "goal": "",
                },
                {
                    "figure": "full / condensed reference scoring time (median ratio)",
                    "value": ratio_median(ds1_times["ds1"], ds1_times["ds1 full"]),
                    "goal": "",
                },
                {
                    "figure": "DS1-sized model vs BeatGAN's 385 beats/s (x)",
                    "value": ds1_bps * BEATGAN_MS_PER_BEAT / 1000,
                    "goal": "",
                },
            ]
            if ds1_bps
            else []
        ),
        *(
            {"figure": f"seconds_per_record, {k} records", "value": v, "goal": "flat"}
            for k, v in scaling.items()
        ),
        {
            "figure": "anchor: BeatGAN beats_per_second (2.6 ms/beat)",
            "value": 1000 / BEATGAN_MS_PER_BEAT,
            "goal": "",
        },
    ]
    print(f"ECG throughput on the CPU, {args.threads} torch thread(s), record 100 ({len(beats)} beats)")
    print_table(rows, ["figure", "value", "goal"])
    result = {
        "seconds_per_record": seconds_per_record,
        "beats_per_second": bps["mlp"],
        "beats_per_second_new_patient": bps["mlp, new patient"],
        "beats_per_second_by_architecture": {a: v for a, v in bps.items() if a in detectors},
        "seconds_per_record_by_count": scaling,
        "beats_per_second_ds1_model": ds1_bps,
        "beats_per_second_ds1_model_full_reference": ds1_full_bps,
        "ds1_model_reference_points": None
        if ds1_refs is None
        else {"condensed": ds1_refs[0], "full": ds1_refs[1]},
        "beats_in_record": len(beats),
        "threads": args.threads,
        "anchor_beatgan_ms_per_beat": BEATGAN_MS_PER_BEAT,
    }
    write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
