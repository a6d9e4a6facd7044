"""Write the state-version-5 checkpoint in ``v5/`` with the ECGAnomalyDetector of commit b41cf63 (the last
one before the suite contract), plus the scores it gave, for ``test_models.py``'s legacy-loading test.

    git show b41cf63:suites/ecg/models.py > /tmp/old_models.py
    python tests/ecg/legacy_checkpoints/make_v5.py /tmp/old_models.py tests/ecg/legacy_checkpoints/v5
"""

import importlib.util
import json
import sys
import tempfile
from pathlib import Path

import torch

from genforge.ecg.data import read_record
from genforge.ecg.preprocess import beat_table
from genforge.ecg.simulate import simulate_record

torch.set_num_threads(1)
spec = importlib.util.spec_from_file_location("old_models", sys.argv[1])
old = importlib.util.module_from_spec(spec)
spec.loader.exec_module(old)
out = Path(sys.argv[2])
with tempfile.TemporaryDirectory() as tmp:
    beats = beat_table(read_record(simulate_record(tmp, "SIMULATED_legacy", minutes=2.0, seed=5)))
normal = beats[beats["aami"] == "N"].reset_index(drop=True)
det = old.ECGAnomalyDetector(hidden=(16,), batch_size=64, max_steps=30, timing_k=5, patient_k=3).fit(normal)
det.save(out)
expected = {
    "record": {"name": "SIMULATED_legacy", "minutes": 2.0, "seed": 5},
    "anomaly_score": det.anomaly_score(beats).tolist(),
    "threshold": det.threshold_,
}
(out / "expected_scores.json").write_text(json.dumps(expected))
