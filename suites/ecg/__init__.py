"""genforge.ecg: heartbeat anomaly detection on ECG recordings, explained by a VAE (the first industry suite).

Public API (imported lazily, so ``import genforge.ecg`` and the ``genforge`` CLI start fast)::

    from genforge.ecg import read_record, beat_table, load_beats, ECGAnomalyDetector
    record = read_record("mitdb/100")              # WFDB or CSV/Parquet (fs=...), resampled to 180 Hz
    beats = beat_table(record)                     # one row per beat: RR features + aligned window
    det = ECGAnomalyDetector().fit(normal_beats)   # sklearn outlier-detector API
    det.predict(beats)                             # +1 normal / -1 abnormal

Layout: ``data`` (read/validate), ``preprocess`` (filter, peaks, windows, RR), ``models`` (detector),
``evaluate`` (MIT-BIH protocols and baselines), ``scoring`` (batch scoring), ``uploads`` (uploaded files
into one record), ``simulate`` (SIMULATED demo data and the latest demo's outputs), ``cli``
(``genforge ecg ...``). Pages and other callers use only the names listed here.
"""

from __future__ import annotations

from genforge.lazy import lazy_getattr
from genforge.suite import Suite

SUITE = Suite(
    name="ecg",
    title="ECG anomalies",
    summary="abnormal heartbeats in long WFDB/CSV recordings: shape and RR timing, explained by a VAE",
    cli="genforge.ecg.cli:app",
    demo="genforge.ecg.cli:run_demo",
    estimators=("genforge.ecg.models:ECGAnomalyDetector",),
    page="genforge.dashboards.views.ecg",
    icon=":material/ecg_heart:",
)

_LAZY = {
    "INTERNAL_FS": "genforge.ecg.data",
    "Record": "genforge.ecg.data",
    "read_record": "genforge.ecg.data",
    "read_wfdb": "genforge.ecg.data",
    "read_table_signal": "genforge.ecg.data",
    "record_from_array": "genforge.ecg.data",
    "resolve_records": "genforge.ecg.data",
    "data_root": "genforge.ecg.data",
    "download": "genforge.ecg.data",
    "AAMI": "genforge.ecg.data",
    "DS1": "genforge.ecg.data",
    "DS2": "genforge.ecg.data",
    "check_heart_rate": "genforge.ecg.data",
    "check_qrs_spectrum": "genforge.ecg.data",
    "beat_table": "genforge.ecg.preprocess",
    "load_beats": "genforge.ecg.preprocess",
    "bandpass": "genforge.ecg.preprocess",
    "local_templates": "genforge.ecg.preprocess",
    "local_noise": "genforge.ecg.preprocess",
    "ECGAnomalyDetector": "genforge.ecg.models",
    "run_evaluation": "genforge.ecg.evaluate:evaluate",
    "metrics": "genforge.ecg.evaluate",
    "format_table": "genforge.ecg.evaluate",
    "score_record": "genforge.ecg.scoring",
    "score_records": "genforge.ecg.scoring",
    "simulate_record": "genforge.ecg.simulate",
    "train_demo_model": "genforge.ecg.simulate",
    "latest_demo_outputs": "genforge.ecg.simulate",
    "DemoOutputs": "genforge.ecg.simulate",
    "record_summary": "genforge.ecg.scoring",
    "ANN_EXT": "genforge.ecg.scoring",
    "records_from_upload": "genforge.ecg.uploads",
    "upload_message": "genforge.ecg.uploads",
    "UPLOAD_KEEP": "genforge.ecg.uploads",
}

__all__ = ["SUITE", *_LAZY]


__getattr__ = lazy_getattr("genforge.ecg", _LAZY, globals())
