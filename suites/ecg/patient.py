"""PatientReference: how far a beat is from the training beats of its *own* recording.

When the training normals include beats of the recording being scored (a patient-adaptive setting: the
analyst marked some of this patient's beats as normal, or the intra-patient protocol, where 80% of every
patient's normal beats are in training), the most telling comparison is with that patient's own normal
beats, not with everybody's. This term gives, per beat, the distance to its ``k``-th nearest training
beat *of the same record* in a joint space of

- the raw beat shape (the amplitude-normalised window, projected on the first ``components`` principal
  components of the training beats), and
- the four log RR intervals (previous, next, local, 5-minute average),

each block scaled to unit total standard deviation. Beats whose record has fewer than
``max(k, MIN_REFERENCE_BEATS)`` training beats get ``NaN`` (no opinion): on a new patient the term is
silent, so patient-wise results (inter-patient, DS1 patient-wise CV) are unchanged by construction.
Records are matched by the beat table's ``record`` column (the record name).

The term was chosen on the intra-patient protocol restricted to DS1's records; the figures are in
``docs/results/ecg.md``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

COMPONENTS = 10
MIN_REFERENCE_BEATS = 50


class PatientReference:
    """Same-record k-NN distance over (beat shape PCA, log RR); see the module docstring."""

    def __init__(self, k: int = 5, components: int = COMPONENTS) -> None:
        self.k = k
        self.components = components

    def fit(self, waves: np.ndarray, log_rr: np.ndarray, records: np.ndarray) -> PatientReference:
        """Learn the projection and scales from these beats and keep them as the reference set."""
        waves = np.asarray(waves, dtype=np.float64)
        log_rr = np.asarray(log_rr, dtype=np.float64)
        self.shape_mean_ = waves.mean(0)
        # principal axes of the centred beats (economy SVD on at most 20k rows is enough for 10 axes)
        rows = np.random.default_rng(0).permutation(len(waves))[:20_000]
        _, _, vt = np.linalg.svd(waves[rows] - self.shape_mean_, full_matrices=False)
        self.shape_axes_ = vt[: min(self.components, len(vt))]
        projected = (waves - self.shape_mean_) @ self.shape_axes_.T
        self.shape_scale_ = float(np.sqrt(projected.var(0).sum()) + 1e-9)
        self.rr_mean_ = log_rr.mean(0)
        self.rr_scale_ = (log_rr.std(0) + 1e-6) * np.sqrt(log_rr.shape[1])
        self.reference_ = self.features(waves, log_rr)
        self.records_ = np.asarray(records).astype(str)
        self._index: dict[str, Any] = {}
        self._known: set[str] | None = None
        return self

    def features(self, waves: np.ndarray, log_rr: np.ndarray) -> np.ndarray:
        """[n, components + 4] float32: the shape projection and log RR, each block at unit total sd."""
        shape = (np.asarray(waves, dtype=np.float64) - self.shape_mean_) @ self.shape_axes_.T
        rr = (np.asarray(log_rr, dtype=np.float64) - self.rr_mean_) / self.rr_scale_
        return np.hstack([shape / self.shape_scale_, rr]).astype(np.float32)

    def known_records(self) -> list[str]:
        """Records with enough reference beats for the term to speak."""
        names, counts = np.unique(self.records_, return_counts=True)
        return [str(n) for n, c in zip(names, counts, strict=True) if c >= max(self.k, MIN_REFERENCE_BEATS)]

    def distance(self, waves: np.ndarray, log_rr: np.ndarray, records: np.ndarray) -> np.ndarray:
        """[n] distance to the k-th nearest reference beat of the same record; NaN for unknown records
        (scipy's k-d tree: exact, ~3x faster here than sklearn's)."""
        from scipy.spatial import cKDTree

        records = np.asarray(records).astype(str)
        out = np.full(len(records), np.nan)
        if len(records) == 0:
            return out
        query = self.features(waves, log_rr)
        if getattr(self, "_known", None) is None:
            self._known = set(self.known_records())
        for name in np.unique(records):
            if name not in self._known:
                continue
            if name not in self._index:
                ref = self.reference_[self.records_ == name]
                self._index[name] = cKDTree(ref.astype(np.float64))
            rows = np.flatnonzero(records == name)
            out[rows] = self._index[name].query(query[rows].astype(np.float64), k=[self.k])[0][:, -1]
        return out

    # ------------------------------------------------------------------------------ persistence
    def arrays(self) -> dict[str, np.ndarray]:
        """The fitted arrays, for a safetensors file (record names go to :meth:`names`)."""
        names = sorted(set(self.records_))
        code = {n: i for i, n in enumerate(names)}
        return {
            "patient_reference": np.ascontiguousarray(self.reference_, dtype=np.float32),
            "patient_record_code": np.array([code[r] for r in self.records_], dtype=np.int32),
            "patient_shape_mean": self.shape_mean_.astype(np.float64),
            "patient_shape_axes": np.ascontiguousarray(self.shape_axes_, dtype=np.float64),
            "patient_rr_mean": self.rr_mean_.astype(np.float64),
            "patient_rr_scale": self.rr_scale_.astype(np.float64),
        }

    def names(self) -> dict[str, Any]:
        """The JSON part of the state: settings, shape scale and the record names behind the codes."""
        return {
            "k": self.k,
            "components": self.components,
            "shape_scale": self.shape_scale_,
            "records": sorted(set(self.records_)),
        }

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], names: dict[str, Any]) -> PatientReference:
        """Rebuild from :meth:`arrays` and :meth:`names`."""
        ref = cls(k=int(names["k"]), components=int(names["components"]))
        ref.shape_mean_ = arrays["patient_shape_mean"]
        ref.shape_axes_ = arrays["patient_shape_axes"]
        ref.shape_scale_ = float(names["shape_scale"])
        ref.rr_mean_ = arrays["patient_rr_mean"]
        ref.rr_scale_ = arrays["patient_rr_scale"]
        ref.reference_ = arrays["patient_reference"]
        ref.records_ = np.asarray(names["records"], dtype=object)[arrays["patient_record_code"]].astype(str)
        ref._index = {}
        ref._known = None
        return ref
