"""ECGAnomalyDetector: beat shape (PCA + kNN density; a conditional VAE beside it) plus RR timing.

How a beat is scored (higher anomaly score = more abnormal):

- **shape**: both shape models read the beat's difference from its *local template*, the median of the
  typical beats around it (``t_*`` columns, :mod:`genforge.ecg.preprocess`; ``inputs="beat+deviation"``
  adds the raw beat), shrunk by ``noise_ref_ / noise`` where the beat's segment is noisier than the
  training beats' median (``noise_scaling``), so a new patient's normal beats look like their own template
  and noise does not look like abnormal shape. ``shape_model="pca-knn"`` (default): distance to the
  ``shape_k``-th nearest reference point in the first ``shape_components`` principal components, the
  reference being the training beats' codes condensed by per-record k-means to ``shape_reference_size``
  points (default: the nearest of ~2,000 centroids; 10x less search than every beat, same DS1 AUROC);
  ``"vae"``: the core VAE's deterministic negative ELBO (:class:`genforge.models.vae.VAE`, MLP or 1-D
  conv, conditioned on log RR). Both are always fitted and reported (``score_parts``); the VAE gives
  :meth:`explain`'s reconstructions. The projection discards the noise outside the normal beats'
  subspace, where the ELBO counts it all: on DS1 patient-wise CV with stress-test noise the PCA + kNN term
  held up far better (``docs/results/ecg.md``, issue 13).
- **rhythm** (``rhythm_weight``): mean distance to the 5 nearest training beats in standardised log RR
  (previous, next, local, 5-minute average) - the RR-only baseline, as a term.
- **timing**: the distance from the beat's timing features to their ``timing_k``-th nearest neighbour
  among the training beats (``timing_density="knn"``), or a Mahalanobis distance (``"mahalanobis"``).
  The neighbour distance follows a multi-modal timing distribution (sinus rhythm, AF, bigeminy).
  ``timing="prematurity"`` reads timing relative to the patient's own rhythm
  (:func:`~genforge.ecg.preprocess.prematurity_features`); ``"absolute"``: the four log RR intervals.
- **same record** (``patient_weight``): when the training beats include beats of the record being
  scored, the distance to the ``patient_k``-th nearest of them in raw shape and log RR
  (:class:`~genforge.ecg.patient.PatientReference`, matched by the ``record`` column); silent (``NaN``,
  contributes 0) for records not in training (a patient-adaptive workflow).
- **combined**: each score is standardised robustly on held-out normal beats (median, IQR) and they are
  summed with weights ``rr_weight`` (timing), ``rhythm_weight`` and ``patient_weight``.
- **two operating points**: a record seen in training is judged against ``offset_``, which flags a
  fraction ``target_far`` of held-out normal beats of the training records; new patients' normal beats
  differ more, so they get their own threshold. With ``calibration_folds`` > 0 (and beats of at least
  that many records in a ``record`` column), ``fit`` also trains one copy of the detector per fold of
  the training *records*, scores the records each copy did not see, and sets ``offset_new_`` so that a
  new group of patients, resampled from those, is flagged on at most ``target_far`` of its normal beats
  with probability ``calibration_bound``; ``new_patient_far_`` keeps how that rate spreads across them.

Defaults were chosen by patient-wise cross-validation inside DS1, never on DS2 (``docs/results/ecg.md``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from genforge.ecg.data import INTERNAL_FS
from genforge.ecg.patient import PatientReference
from genforge.ecg.preprocess import (
    MODEL_RR_COLS,
    NOISE_COL,
    PRE,
    WINDOW,
    beat_arrays,
    prematurity_features,
)
from genforge.errors import DataError, GenforgeError
from genforge.estimator import Example, SuiteEstimator, to_numpy

INPUTS = {"beat+deviation": 2, "deviation": 1}
DEFAULT_HIDDEN = {"conv1d": (8, 16, 32), "conv1d-residual": (8, 16, 32), "mlp": (256, 128)}
ARCHITECTURES = tuple(DEFAULT_HIDDEN)
TIMINGS = ("prematurity", "absolute")
DENSITIES = ("knn", "mahalanobis")
SHAPE_MODELS = ("pca-knn", "vae")
SHAPE_REFERENCE_SIZE = 2000  # the shape term's kNN reference: k-means condensed to about this many points
STATE_VERSION = 8
TIMING_REFERENCE = "timing_reference.safetensors"
PATIENT_REFERENCE = "patient_reference.safetensors"
SHAPE_REFERENCE = "shape_reference.safetensors"
RHYTHM_K = 5  # the rhythm term: mean distance to the 5 nearest training beats in standardised log RR
SIMULATED_PREFIX = "SIMULATED"  # record names of genforge.ecg.simulate


class ECGAnomalyDetector(SuiteEstimator):
    """Heartbeat anomaly detector: fit on normal beats, score any beats (see the module docstring).

    ``beats`` everywhere is a beat table from :func:`genforge.ecg.beat_table` or ``load_beats``
    (columns ``rr_*``, ``w_*``, ``t_*``).

    scikit-learn's outlier-detector conventions (as IsolationForest): ``score_samples`` is *higher for
    normal* beats (minus the anomaly score), ``decision_function = score_samples - offset`` (``offset_`` or
    ``offset_new_`` per beat, see :meth:`thresholds`) is negative for outliers, ``predict`` gives +1
    (normal) / -1 (abnormal); ``anomaly_score`` is the plain higher-is-worse score the CLI writes.
    Persistence, ``clone``, ``NotFittedError`` and the device policy come from
    :class:`genforge.estimator.SuiteEstimator`; checkpoints of state versions 1-5 load.
    """

    state_version: ClassVar[int] = STATE_VERSION
    min_state_version: ClassVar[int] = 1
    # checkpoints written before the suite contract named the estimator by its import path
    checkpoint_names: ClassVar[tuple[str, ...]] = ("genforge.ecg.ECGAnomalyDetector",)

    def __init__(
        self,
        architecture: str = "mlp",
        latent_dim: int = 2,
        hidden: tuple[int, ...] | None = None,
        beta: float = 1.0,
        max_steps: int = 800,
        batch_size: int = 128,
        lr: float = 2e-3,
        rr_weight: float = 0.5,
        shape_model: str = "pca-knn",
        shape_components: int = 10,
        shape_k: int = 1,
        shape_reference_size: int | None = SHAPE_REFERENCE_SIZE,
        rhythm_weight: float = 0.2,
        timing: str = "prematurity",
        timing_density: str = "knn",
        timing_k: int = 20,
        use_cond: bool = True,
        inputs: str = "deviation",
        noise_scaling: bool = True,
        patient_weight: float = 1.0,
        patient_k: int = 5,
        target_far: float = 0.01,
        validation_fraction: float = 0.15,
        max_train_beats: int | None = 40_000,
        calibration_folds: int = 4,
        calibration_bound: float | None = 0.95,
        seed: int = 0,
        device: str = "auto",
        progress: bool = False,
    ) -> None:
        self.architecture = architecture
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.beta = beta
        self.max_steps = max_steps
        self.batch_size = batch_size
        self.lr = lr
        self.rr_weight = rr_weight
        self.shape_model = shape_model
        self.shape_components = shape_components
        self.shape_k = shape_k
        self.shape_reference_size = shape_reference_size
        self.rhythm_weight = rhythm_weight
        self.timing = timing
        self.timing_density = timing_density
        self.timing_k = timing_k
        self.use_cond = use_cond
        self.inputs = inputs
        self.noise_scaling = noise_scaling
        self.patient_weight = patient_weight
        self.patient_k = patient_k
        self.target_far = target_far
        self.validation_fraction = validation_fraction
        self.max_train_beats = max_train_beats
        self.calibration_folds = calibration_folds
        self.calibration_bound = calibration_bound
        self.seed = seed
        self.device = device
        self.progress = progress

    @classmethod
    def example(cls) -> Example:
        """A tiny detector on the normal beats of a 2-minute SIMULATED record (neurokit2; no download)."""
        import tempfile

        from genforge.ecg.data import read_record
        from genforge.ecg.preprocess import beat_table
        from genforge.ecg.simulate import simulate_record

        with tempfile.TemporaryDirectory() as tmp:
            beats = beat_table(read_record(simulate_record(tmp, "SIMULATED_example", minutes=2.0, seed=3)))
        normal = beats[beats["aami"] == "N"].reset_index(drop=True)
        return Example(
            params={"max_steps": 30, "batch_size": 64, "timing_k": 5, "target_far": 0.02},
            fit_args=(normal,),
            probe=lambda est: est.score_samples(beats),
        )

    # ---------------------------------------------------------------------------------------- fit
    def _validate_params(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise GenforgeError(
                f"architecture={self.architecture!r}: expected one of {', '.join(ARCHITECTURES)}"
            )
        if self.inputs not in INPUTS:
            raise GenforgeError(f"inputs={self.inputs!r}: expected one of {', '.join(INPUTS)}")
        if self.shape_model not in SHAPE_MODELS:
            raise GenforgeError(
                f"shape_model={self.shape_model!r}: expected one of {', '.join(SHAPE_MODELS)}"
            )
        if self.shape_components < 1 or self.shape_k < 1 or self.rhythm_weight < 0:
            raise GenforgeError(
                f"shape_components={self.shape_components}, shape_k={self.shape_k}, "
                f"rhythm_weight={self.rhythm_weight}: expected positive counts and a weight >= 0"
            )
        if self.shape_reference_size is not None and self.shape_reference_size < self.shape_k:
            raise GenforgeError(
                f"shape_reference_size={self.shape_reference_size}: expected None (every training beat) or "
                f"at least shape_k={self.shape_k} reference points"
            )
        if self.timing not in TIMINGS:
            raise GenforgeError(f"timing={self.timing!r}: expected one of {', '.join(TIMINGS)}")
        if self.timing_density not in DENSITIES:
            raise GenforgeError(
                f"timing_density={self.timing_density!r}: expected one of {', '.join(DENSITIES)}"
            )
        if self.timing_k < 1:
            raise GenforgeError(f"timing_k={self.timing_k}: expected a positive number of neighbours")
        if self.patient_weight < 0 or self.patient_k < 1:
            raise GenforgeError(
                f"patient_weight={self.patient_weight}, patient_k={self.patient_k}: expected a weight >= 0 "
                "and a positive number of neighbours"
            )
        if not 0 < self.target_far < 1:
            raise GenforgeError(f"target_far={self.target_far}: expected a fraction in (0, 1)")
        if self.calibration_bound is not None and not 0 < self.calibration_bound < 1:
            raise GenforgeError(
                f"calibration_bound={self.calibration_bound}: expected None (the pooled quantile) or a "
                "probability in (0, 1)"
            )
        if self.calibration_folds < 0 or self.calibration_folds == 1:
            raise GenforgeError(
                f"calibration_folds={self.calibration_folds}: expected 0 (off) or at least 2 folds of records"
            )

    def fit(self, beats: pd.DataFrame, y: Any = None) -> ECGAnomalyDetector:
        """Train on beats assumed normal; hold out ``validation_fraction`` for early stopping,
        score standardisation and the threshold."""
        from genforge.devices import pick_device
        from genforge.models.vae import VAE, VAEConfig
        from genforge.training import TrainConfig, Trainer

        self._validate_params()
        device = pick_device(self.device)
        waves, templates, rr = beat_arrays(beats)
        n = len(waves)
        if n < 50:
            raise DataError(f"fit: {n} beats given; expected at least 50 normal beats")
        rng = np.random.default_rng(self.seed)
        order = rng.permutation(n)
        n_val = max(20, int(round(self.validation_fraction * n)))
        val_idx, train_idx = order[:n_val], order[n_val:]
        if self.max_train_beats and len(train_idx) > self.max_train_beats:
            train_idx = train_idx[: self.max_train_beats]

        self.model_ = None  # a refit starts from nothing (and _device() reads self.device meanwhile)
        logrr = _log_rr(rr)
        self.rr_mean_ = logrr[train_idx].mean(0)
        self.rr_std_ = logrr[train_idx].std(0) + 1e-6
        timing = self._timing_features(beats, rr)
        self.timing_mean_ = timing[train_idx].mean(0)
        self.timing_std_ = timing[train_idx].std(0) + 1e-6
        z = (timing[train_idx] - self.timing_mean_) / self.timing_std_
        cov = np.cov(z, rowvar=False) + 1e-3 * np.eye(z.shape[1])
        self.timing_precision_ = np.linalg.inv(cov)
        self.timing_reference_ = z.astype(np.float32)
        self._timing_index = None
        noise = self._noise(beats)
        self.noise_ref_ = float(np.median(noise[train_idx])) if noise is not None else 1.0
        x = self._inputs(waves, templates, noise)
        self.x_scale_ = float(np.abs(x[train_idx]).std() + 1e-6)
        x = x / self.x_scale_
        records = beats["record"].astype(str).to_numpy() if "record" in beats.columns else None
        knn_val = self._fit_shape_reference(x.reshape(n, -1), train_idx, val_idx, records)
        z_rr = ((logrr - self.rr_mean_) / self.rr_std_).astype(np.float32)
        self.rhythm_reference_ = z_rr[train_idx]
        self._rhythm_index = None
        rhythm_val = self._rhythm_score(z_rr[val_idx])
        patient_val = self._fit_patient(beats, waves, logrr, train_idx, val_idx)
        cond = self._cond(rr)
        cfg = VAEConfig(
            kind="conv1d" if self.architecture.startswith("conv1d") else "mlp",
            residual=self.architecture == "conv1d-residual",
            in_channels=INPUTS[self.inputs],
            length=WINDOW if self.architecture != "mlp" else 0,
            in_features=INPUTS[self.inputs] * WINDOW if self.architecture == "mlp" else 0,
            latent_dim=self.latent_dim,
            hidden=tuple(self.hidden or DEFAULT_HIDDEN[self.architecture]),
            cond_dim=len(MODEL_RR_COLS) if self.use_cond else 0,
            beta=self.beta,
        )
        torch.manual_seed(self.seed)
        model = VAE(cfg)
        xt = torch.from_numpy(x)  # CPU tensors: the engine moves each batch to the model's device
        if self.architecture == "mlp":
            xt = xt.flatten(1)
        ct = torch.from_numpy(cond) if cond is not None else None
        train = (xt[train_idx],) if ct is None else (xt[train_idx], ct[train_idx])
        val = (xt[val_idx],) if ct is None else (xt[val_idx], ct[val_idx])
        tcfg = TrainConfig(
            max_steps=self.max_steps,
            batch_size=self.batch_size,
            lr=self.lr,
            lr_schedule="cosine",
            val_every=max(50, self.max_steps // 4),
            seed=self.seed,
            progress=self.progress,
            device=str(device),
            precision="fp32",
        )
        self.train_result_ = Trainer(tcfg).fit(model, train, val_data=val)
        self.model_ = model.to(device).eval()
        # standardise both scores on held-out normal beats, then set the threshold there
        vae_val = self._vae_score(xt[val_idx], None if ct is None else ct[val_idx])
        rr_val = self._rr_score(timing[val_idx])
        self.vae_center_, self.vae_scale_ = _robust(vae_val)
        self.rr_center_, self.rr_scale_ = _robust(rr_val)
        self.knn_center_, self.knn_scale_ = _robust(knn_val)
        self.rhythm_center_, self.rhythm_scale_ = _robust(rhythm_val)
        raw = {"vae": vae_val, "pca_knn": knn_val, "timing": rr_val, "rhythm": rhythm_val}
        combined = self._combine(self._standardise({**raw, "patient": patient_val}))
        self.offset_ = -float(np.quantile(combined, 1.0 - self.target_far))
        self.n_train_ = int(len(train_idx))
        self.training_records_ = (
            sorted({str(r) for r in beats["record"]}) if "record" in beats.columns else None
        )
        self.offset_new_, self.new_patient_far_ = None, None
        if self.calibration_folds and len(self.training_records_ or []) >= self.calibration_folds:
            self._calibrate_new_patients(beats)
        return self

    def _calibrate_new_patients(self, beats: pd.DataFrame) -> None:
        """Set ``offset_new_`` on patients held out of training (see the module docstring): one copy of
        the detector per fold of the training records, each scoring the records it did not see."""
        from sklearn.base import clone

        records = np.asarray(self.training_records_)
        rng = np.random.default_rng(self.seed + 1)
        groups = np.array_split(rng.permutation(records), self.calibration_folds)
        names = beats["record"].astype(str).to_numpy()
        scores, owners = [], []
        for k, group in enumerate(groups):
            held = np.isin(names, group)
            # the same-record term is silent on held-out records: the copies leave it out; with the
            # PCA + kNN shape term the VAE plays no part in their scores, so it is trained for one step only
            twin = clone(self).set_params(
                calibration_folds=0,
                patient_weight=0.0,
                progress=False,
                seed=self.seed + 100 + k,
                max_steps=self.max_steps if self.shape_model == "vae" else 1,
            )
            twin.fit(beats[~held].reset_index(drop=True))
            scores.append(twin.anomaly_score(beats[held].reset_index(drop=True)))
            owners.append(names[held])
        score, owner = np.concatenate(scores), np.concatenate(owners)
        if self.calibration_bound is None:  # state versions 6-7: the pooled quantile
            threshold, upper = float(np.quantile(score, 1.0 - self.target_far)), None
        else:
            threshold, upper = self._patient_bound_threshold(score, owner, records)
        per_record = np.array([np.mean(score[owner == r] > threshold) for r in records])
        q25, q50, q75 = np.quantile(per_record, [0.25, 0.5, 0.75])
        self.offset_new_ = -threshold
        self.new_patient_far_ = {
            "upper": upper,
            "bound": self.calibration_bound,
            "pooled": float(np.mean(score > threshold)),
            "median": float(q50),
            "q25": float(q25),
            "q75": float(q75),
            "max": float(per_record.max()),
            "records": int(len(records)),
            "folds": int(self.calibration_folds),
        }

    def _patient_bound_threshold(
        self, score: np.ndarray, owner: np.ndarray, records: np.ndarray, draws: int = 1000
    ) -> tuple[float, float]:
        """The lowest threshold at which the pooled false-alarm share of a new group of patients stays
        within ``target_far`` with probability ``calibration_bound``, that group drawn by resampling the
        held-out patients (a patient bootstrap: a few patients carry most false alarms, so the pooled
        quantile promised too little on new ones). Returns it and the bound reached there."""
        sorted_by = [np.sort(score[owner == r]) for r in records]
        n = np.array([len(x) for x in sorted_by], dtype=np.float64)
        draw = np.random.default_rng(self.seed + 2).integers(0, len(records), (draws, len(records)))
        counts = np.stack([np.bincount(d, minlength=len(records)) for d in draw])  # [draws, records]
        totals = counts @ n

        def upper(t: float) -> float:
            alarms = np.array([len(x) - np.searchsorted(x, t, side="right") for x in sorted_by], dtype=float)
            return float(np.quantile((counts @ alarms) / totals, self.calibration_bound))

        candidates = np.unique(score)
        lo, hi = 0, len(candidates) - 1  # the bound falls as the threshold rises: bisect
        while lo < hi:
            mid = (lo + hi) // 2
            if upper(candidates[mid]) <= self.target_far:
                hi = mid
            else:
                lo = mid + 1
        return float(candidates[lo]), upper(candidates[lo])

    # ------------------------------------------------------------------------------------ scoring
    def anomaly_score(self, beats: pd.DataFrame) -> np.ndarray:
        """Higher = more abnormal: the ``score`` column of :meth:`score_parts`, without running the VAE
        when it is not the shape term in use (its ELBO is reported by ``score_parts`` only)."""
        self._check_fitted()
        raw = self._raw_terms(beats, vae=self.shape_model == "vae")
        return self._combine(self._standardise(raw))

    def score_parts(self, beats: pd.DataFrame) -> pd.DataFrame:
        """Per beat: ``shape`` (the shape term in use: ``pca_knn`` or ``vae``, see ``shape_model``),
        ``vae`` (VAE negative ELBO), ``pca_knn`` (distance to the ``shape_k``-th nearest training beat in
        the first ``shape_components`` principal components of the same input; NaN for checkpoints older
        than state version 7), ``timing`` (kNN or Mahalanobis distance of the timing features), ``rhythm``
        (mean distance to the 5 nearest training beats in standardised log RR), ``patient`` (distance to the
        training beats of the same record, NaN where the record had none, see
        :mod:`genforge.ecg.patient`) and the combined ``score``.

        With ``timing="prematurity"`` the beats must keep their record's order (as ``beat_table`` gives
        them): the irregularity feature comes from the neighbouring beats at preprocessing time.
        """
        self._check_fitted()
        raw = self._raw_terms(beats, vae=True)
        shape = raw["vae"] if self.shape_model == "vae" else raw["pca_knn"]
        score = self._combine(self._standardise(raw))
        return pd.DataFrame(
            {"shape": shape, **{k: v for k, v in raw.items()}, "score": score}, index=beats.index
        )

    def _raw_terms(self, beats: pd.DataFrame, vae: bool) -> dict[str, np.ndarray]:
        """The raw terms of :meth:`score_parts`; ``vae=False`` skips the VAE (its column is then NaN)."""
        waves, templates, rr = beat_arrays(beats)
        x = self._inputs(waves, templates, self._noise(beats)) / self.x_scale_
        if vae:
            cond = self._cond(rr)
            elbo = self._vae_score(torch.from_numpy(x), None if cond is None else torch.from_numpy(cond))
        else:
            elbo = np.full(len(x), np.nan)
        return {
            "vae": elbo,
            "pca_knn": self._shape_distance(x.reshape(len(x), -1)),
            "timing": self._rr_score(self._timing_features(beats, rr)),
            "rhythm": self._rhythm_score(((_log_rr(rr) - self.rr_mean_) / self.rr_std_).astype(np.float32)),
            "patient": self._patient_distance(beats),
        }

    def score_samples(self, beats: pd.DataFrame) -> np.ndarray:
        """sklearn convention: the lower, the more abnormal (minus :meth:`anomaly_score`)."""
        return -self.anomaly_score(beats)

    def decision_function(self, beats: pd.DataFrame) -> np.ndarray:
        """Negative for outliers: ``score_samples`` minus the beat's offset (minus :meth:`thresholds`)."""
        return self.score_samples(beats) + self.thresholds(beats)

    def seen_in_training(self, beats: pd.DataFrame) -> np.ndarray:
        """[n] bool: the beat's record (``record`` column) had beats in training; all False without it."""
        self._check_fitted()
        if "record" not in beats.columns or not self.training_records_:
            return np.zeros(len(beats), dtype=bool)
        return beats["record"].astype(str).isin(self.training_records_).to_numpy()

    def thresholds(self, beats: pd.DataFrame) -> np.ndarray:
        """[n] the anomaly-score threshold of each beat: :attr:`threshold_` for records seen in training,
        :attr:`threshold_new_` for the others (the same when no new-patient calibration was made)."""
        return np.where(self.seen_in_training(beats), self.threshold_, self.threshold_new_)

    @property
    def threshold_new_(self) -> float:
        """The threshold for records not seen in training (set on held-out patients; ``threshold_`` when
        the detector was fitted without ``calibration_folds`` or without a ``record`` column)."""
        self._check_fitted()
        offset = getattr(self, "offset_new_", None)
        return -(self.offset_ if offset is None else offset)

    def predict(self, beats: pd.DataFrame) -> np.ndarray:
        """+1 for normal beats, -1 for abnormal ones (at the fitted threshold)."""
        return np.where(self.decision_function(beats) < 0, -1, 1)

    @property
    def trained_on_simulated_only(self) -> bool:
        """Whether every training record was SIMULATED (``genforge.ecg.simulate``): such a model knows one
        simulated heart and flags most normal beats of real recordings, so it is for trying things only."""
        self._check_fitted()
        names = self.training_records_
        if names is None and getattr(self, "patient_", None) is not None:
            names = sorted(set(self.patient_.records_))
        return bool(names) and all(str(n).startswith(SIMULATED_PREFIX) for n in names)

    @property
    def threshold_(self) -> float:
        """The anomaly-score threshold (``-offset_``): beats scoring above it are flagged."""
        self._check_fitted()
        return -self.offset_

    def explain(self, beat: pd.DataFrame | pd.Series) -> pd.DataFrame:
        """One beat: time (ms from the R peak), input, reconstruction, template and per-sample error (nats).

        The error is the VAE's per-sample negative log-likelihood summed over both channels, so it
        shows *where* in the beat the model was surprised.
        """
        self._check_fitted()
        frame = beat.to_frame().T if isinstance(beat, pd.Series) else beat
        if len(frame) != 1:
            raise DataError(f"explain: expected one beat, got {len(frame)}")
        waves, templates, rr = beat_arrays(frame)
        noise = self._noise(frame)
        x = self._tensor(self._inputs(waves, templates, noise) / self.x_scale_)
        cond = self._cond(rr)
        ct = None if cond is None else self._tensor(cond)
        model = self.model_
        with torch.no_grad():
            xin = self._model_x(x)
            k = INPUTS[self.inputs]
            rec = to_numpy(model.reconstruct(xin, ct).reshape(1, k, WINDOW))
            err = to_numpy(model.recon_error(xin, ct).reshape(1, k, WINDOW).sum(1)[0])
        if self.inputs == "deviation":  # reconstructed beat = template + reconstructed deviation
            recon = templates[0] + rec[0, 0] * self.x_scale_ / self._noise_factor(noise, 1)[0]
        else:
            recon = rec[0, 0] * self.x_scale_
        return pd.DataFrame(
            {
                "t_ms": (np.arange(WINDOW) - PRE) * 1000.0 / INTERNAL_FS,
                "input": waves[0],
                "reconstruction": recon,
                "template": templates[0],
                "error": err,
            }
        )

    # ---------------------------------------------------------------------------------- persistence
    def _get_state(self) -> dict[str, Any]:
        """Scalers, threshold and the same-record reference's names (arrays go to :meth:`_save_files`)."""
        state: dict[str, Any] = {
            key: getattr(self, key).tolist()
            for key in ("rr_mean_", "rr_std_", "timing_mean_", "timing_std_", "timing_precision_")
        }
        state.update({key: float(getattr(self, key)) for key in _SCALARS})
        state["n_train_"] = int(self.n_train_)
        state["training_records_"] = self.training_records_
        state["offset_new_"] = self.offset_new_
        state["new_patient_far_"] = self.new_patient_far_
        state["patient"] = None if self.patient_ is None else self.patient_.names()
        return state

    def _save_files(self, directory: Path) -> None:
        """The timing reference set and the same-record reference, as safetensors beside the model."""
        self._save_arrays(directory / TIMING_REFERENCE, {"timing_reference": self.timing_reference_})
        self._save_arrays(
            directory / SHAPE_REFERENCE,
            {
                "shape_mean": self.shape_mean_,
                "shape_axes": np.ascontiguousarray(self.shape_axes_),
                "shape_reference": np.ascontiguousarray(self.shape_reference_),
                "rhythm_reference": np.ascontiguousarray(self.rhythm_reference_),
            },
        )
        if self.patient_ is not None:
            self._save_arrays(directory / PATIENT_REFERENCE, self.patient_.arrays())

    def _set_state(self, state: dict[str, Any], directory: Path) -> None:
        for key in ("rr_mean_", "rr_std_", "timing_mean_", "timing_std_", "timing_precision_"):
            setattr(self, key, np.asarray(state[key], dtype=np.float64))
        for key in _SCALARS:
            setattr(self, key, float(state.get(key, _SCALAR_DEFAULTS.get(key, np.nan))))
        self.n_train_ = int(state["n_train_"])
        records = state.get("training_records_")  # absent in checkpoints written before it was kept
        self.training_records_ = None if records is None else [str(r) for r in records]
        offset_new = state.get("offset_new_")
        self.offset_new_ = None if offset_new is None else float(offset_new)
        self.new_patient_far_ = state.get("new_patient_far_")
        self._timing_index = None
        if self.timing_density == "knn":
            arrays = self._load_arrays(directory / TIMING_REFERENCE)
            self.timing_reference_ = arrays["timing_reference"].astype(np.float32)
        self.shape_reference_ = self.rhythm_reference_ = None  # state versions 1-6 have neither
        self._shape_index = self._rhythm_index = None
        if (directory / SHAPE_REFERENCE).is_file():
            arrays = self._load_arrays(directory / SHAPE_REFERENCE)
            self.shape_mean_, self.shape_axes_ = arrays["shape_mean"], arrays["shape_axes"]
            self.shape_reference_ = arrays["shape_reference"].astype(np.float32)
            self.rhythm_reference_ = arrays["rhythm_reference"].astype(np.float32)
        self.patient_ = None
        if state.get("patient"):
            arrays = self._load_arrays(directory / PATIENT_REFERENCE)
            self.patient_ = PatientReference.from_state(arrays, state["patient"])

    @classmethod
    def _upgrade(cls, version: int, extra: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Params and state of a checkpoint of an older state version, read as that version scored."""
        params, state = super()._upgrade(version, extra)
        if version < 2:  # version 1: absolute RR timing, shared scalers
            params["timing"] = "absolute"
            state.update(
                timing_mean_=state["rr_mean_"],
                timing_std_=state["rr_std_"],
                timing_precision_=state["rr_precision_"],
            )
        if version < 3:  # versions 1-2: Mahalanobis timing, no reference set
            params["timing_density"] = "mahalanobis"
        if version < 4:  # versions 1-3: deviation not scaled by local noise
            params["noise_scaling"] = False
            state["noise_ref_"] = 1.0
        if version < 5:  # versions 1-4: no same-record reference
            params["patient_weight"] = 0.0
            state.update(patient_center_=0.0, patient_scale_=1.0, patient=None)
        if version < 6:  # versions 1-5: one threshold for every record
            params["calibration_folds"] = 0
            state.update(offset_new_=None, new_patient_far_=None)
        if version < 7:  # versions 1-6: VAE shape score, no rhythm term
            params.update(shape_model="vae", rhythm_weight=0.0)
        if version < 8:  # versions 1-7: every training beat in the shape reference (as saved), the
            params.update(shape_reference_size=None, calibration_bound=None)  # pooled-quantile threshold
        return params, state

    # ---------------------------------------------------------------------------------- internals
    def _noise(self, beats: pd.DataFrame) -> np.ndarray | None:
        """The beat table's local noise level per beat (``None`` when ``noise_scaling`` is off)."""
        if not self.noise_scaling:
            return None
        if NOISE_COL not in beats.columns:
            raise DataError(
                f"beat table lacks column {NOISE_COL!r} (local noise level); build it with beat_table()"
            )
        return beats[NOISE_COL].to_numpy(np.float64)

    def _noise_factor(self, noise: np.ndarray | None, n: int) -> np.ndarray:
        """[n] how much each beat's deviation is shrunk: ``noise_ref_ / noise`` where its segment is
        noisier than the training beats' median, 1 elsewhere (clean segments are never amplified)."""
        if noise is None:
            return np.ones(n)
        return np.minimum(1.0, self.noise_ref_ / np.maximum(noise, 1e-9))

    def _inputs(self, waves: np.ndarray, templates: np.ndarray, noise: np.ndarray | None) -> np.ndarray:
        """The VAE's channels: the beat's difference from its local template (in units of the local
        noise where that is above the usual, see ``noise_scaling``), and with ``inputs="beat+deviation"``
        the beat itself."""
        deviation = (waves - templates) * self._noise_factor(noise, len(waves))[:, None]
        if self.inputs == "deviation":
            return deviation[:, None, :].astype(np.float32)
        return np.stack([waves, deviation], axis=1).astype(np.float32)

    def _cond(self, rr: np.ndarray) -> np.ndarray | None:
        if not self.use_cond:
            return None
        return ((_log_rr(rr) - self.rr_mean_) / self.rr_std_).clip(-8, 8).astype(np.float32)

    def _model_x(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) if self.model_.config.kind == "mlp" else x

    def _vae_score(self, x: torch.Tensor, cond: torch.Tensor | None, batch: int = 4096) -> np.ndarray:
        """[n] deterministic negative ELBO per beat; ``x``/``cond`` may live anywhere (batches are moved
        to the model's device and the results brought back)."""
        out = []
        model = self.model_
        device = self._device()
        with torch.no_grad():
            for i in range(0, len(x), batch):
                c = None if cond is None else cond[i : i + batch].to(device)
                xb = self._model_x(x[i : i + batch].to(device))
                # deterministic negative ELBO: NLL of the reconstruction decoded from mu, plus the KL
                mu, logvar = model.encode(xb, c)
                rec = model.nll(model.decode(mu, c), xb).flatten(1).sum(1)
                out.append(to_numpy(rec + model.kl(mu, logvar)))
        return np.concatenate(out).astype(np.float64) if out else np.zeros(0)

    def _timing_features(self, beats: pd.DataFrame, rr: np.ndarray) -> np.ndarray:
        """The features the timing score reads (see ``timing``): prematurity features or log RR."""
        if self.timing == "prematurity":
            return prematurity_features(beats)
        return _log_rr(rr)

    def _rr_score(self, features: np.ndarray) -> np.ndarray:
        z = (features - self.timing_mean_) / self.timing_std_
        if self.timing_density == "mahalanobis":
            return np.sqrt(np.einsum("ij,jk,ik->i", z, self.timing_precision_, z))
        if getattr(self, "_timing_index", None) is None:
            self._timing_index = _kd_tree(self.timing_reference_)
        if len(z) == 0:
            return np.zeros(0)
        k = min(self.timing_k, len(self.timing_reference_))
        return self._timing_index.query(z.astype(np.float32), k=[k])[0][:, -1]

    def _fit_shape_reference(
        self, x: np.ndarray, train_idx: np.ndarray, val_idx: np.ndarray, records: np.ndarray | None = None
    ) -> np.ndarray:
        """PCA of the training inputs (flattened) and their projections as the kNN reference (condensed to
        ``shape_reference_size`` points, see :func:`condense_reference`); returns the held-out beats'
        distances (for the robust scale)."""
        rows = np.random.default_rng(self.seed).permutation(train_idx)[:20_000]
        self.shape_mean_ = x[rows].mean(0).astype(np.float64)
        _, _, vt = np.linalg.svd(x[rows] - self.shape_mean_, full_matrices=False)
        self.shape_axes_ = vt[: min(self.shape_components, len(vt))].astype(np.float64)
        self.shape_reference_ = condense_reference(
            self._project(x[train_idx]),
            None if records is None else records[train_idx],
            self.shape_reference_size,
            self.seed,
        )
        self._shape_index = None
        return self._shape_distance(x[val_idx])

    def _project(self, x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, dtype=np.float64) - self.shape_mean_) @ self.shape_axes_.T).astype(np.float32)

    def _shape_distance(self, x: np.ndarray) -> np.ndarray:
        """[n] distance to the ``shape_k``-th nearest training beat in the principal components (NaN for
        checkpoints without the reference)."""
        if getattr(self, "shape_reference_", None) is None:
            return np.full(len(x), np.nan)
        if getattr(self, "_shape_index", None) is None:
            from sklearn.neighbors import NearestNeighbors

            # exhaustive search: in 10 dimensions it is ~1.7x faster than sklearn's tree, same neighbours
            k = min(self.shape_k, len(self.shape_reference_))
            self._shape_index = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(self.shape_reference_)
        if len(x) == 0:
            return np.zeros(0)
        return self._shape_index.kneighbors(self._project(x))[0][:, -1].astype(np.float64)

    def _rhythm_score(self, z_rr: np.ndarray) -> np.ndarray:
        """[n] mean distance to the ``RHYTHM_K`` nearest training beats in standardised log RR (NaN for
        checkpoints without the reference)."""
        if getattr(self, "rhythm_reference_", None) is None:
            return np.full(len(z_rr), np.nan)
        if getattr(self, "_rhythm_index", None) is None:
            self._rhythm_index = _kd_tree(self.rhythm_reference_)
        if len(z_rr) == 0:
            return np.zeros(0)
        k = min(RHYTHM_K, len(self.rhythm_reference_))
        return self._rhythm_index.query(z_rr, k=list(range(1, k + 1)))[0].mean(1)

    def _fit_patient(
        self,
        beats: pd.DataFrame,
        waves: np.ndarray,
        logrr: np.ndarray,
        train_idx: np.ndarray,
        val_idx: np.ndarray,
    ) -> np.ndarray:
        """Fit the same-record reference (``patient_``; ``None`` when ``patient_weight`` is 0 or the beats
        carry no ``record`` column) and its robust scale; returns the held-out beats' raw distances."""
        self.patient_ = None
        self.patient_center_, self.patient_scale_ = 0.0, 1.0
        if self.patient_weight <= 0 or "record" not in beats.columns:
            return np.full(len(val_idx), np.nan)
        records = beats["record"].to_numpy().astype(str)
        self.patient_ = PatientReference(k=self.patient_k).fit(
            waves[train_idx], logrr[train_idx], records[train_idx]
        )
        val = self.patient_.distance(waves[val_idx], logrr[val_idx], records[val_idx])
        if np.isfinite(val).sum() >= 20:
            self.patient_center_, self.patient_scale_ = _robust(val[np.isfinite(val)])
        return val

    def _patient_distance(self, beats: pd.DataFrame) -> np.ndarray:
        """[n] raw same-record distance (NaN where the term is silent or off)."""
        if getattr(self, "patient_", None) is None or "record" not in beats.columns:
            return np.full(len(beats), np.nan)
        waves, _, rr = beat_arrays(beats)
        return self.patient_.distance(waves, _log_rr(rr), beats["record"].to_numpy())

    def standardised_parts(self, parts: pd.DataFrame) -> dict[str, np.ndarray]:
        """The terms of :meth:`score_parts` on the scale they are summed on (the held-out normal beats'
        median 0 and IQR 1; the patient and rhythm terms 0 where silent), before weighting: ``shape`` (the
        term in use), ``vae``, ``pca_knn``, ``timing``, ``rhythm``, ``patient``."""
        raw = {k: parts[k].to_numpy() for k in ("vae", "pca_knn", "timing", "rhythm", "patient")}
        return self._standardise(raw)

    def _standardise(self, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        z = {
            "vae": (raw["vae"] - self.vae_center_) / self.vae_scale_,
            "pca_knn": (raw["pca_knn"] - self.knn_center_) / self.knn_scale_,
            "timing": (raw["timing"] - self.rr_center_) / self.rr_scale_,
            "rhythm": np.nan_to_num((raw["rhythm"] - self.rhythm_center_) / self.rhythm_scale_, nan=0.0),
            "patient": np.nan_to_num((raw["patient"] - self.patient_center_) / self.patient_scale_, nan=0.0),
        }
        z["shape"] = z["vae"] if self.shape_model == "vae" else z["pca_knn"]
        return z

    def combine(self, z: dict[str, np.ndarray]) -> np.ndarray:
        """The anomaly score from standardised terms (:meth:`standardised_parts`): ``shape`` plus the
        weighted timing, rhythm and same-record terms. Swap ``z["shape"]`` to score another shape term."""
        return self._combine(z)

    def _combine(self, z: dict[str, np.ndarray]) -> np.ndarray:
        out = z["shape"] + self.rr_weight * z["timing"] + self.patient_weight * z["patient"]
        return out + self.rhythm_weight * z["rhythm"] if self.rhythm_weight else out


_SCALARS = (
    "x_scale_",
    "noise_ref_",
    "vae_center_",
    "vae_scale_",
    "rr_center_",
    "rr_scale_",
    "patient_center_",
    "patient_scale_",
    "offset_",
    "knn_center_",
    "knn_scale_",
    "rhythm_center_",
    "rhythm_scale_",
)
_SCALAR_DEFAULTS = {"knn_center_": 0.0, "knn_scale_": 1.0, "rhythm_center_": 0.0, "rhythm_scale_": 1.0}


def condense_reference(
    codes: np.ndarray, records: np.ndarray | None, size: int | None, seed: int = 0
) -> np.ndarray:
    """At most about ``size`` points standing for ``codes`` (the training beats' principal-component codes):
    k-means centroids fitted per record, each record given clusters in proportion to its beats (at least
    one; a record with fewer beats than its share keeps them all), so every patient's normal shapes stay
    in the reference. ``size=None`` or more than ``len(codes)``: ``codes`` unchanged. Searching ~2,000
    points instead of ~39,000 is what keeps a DS1-sized model above 20,000 beats/s; the size (and
    ``shape_k=1``, the nearest centroid) was chosen on DS1 patient-wise CV (``docs/results/ecg.md``)."""
    if size is None or len(codes) <= size:
        return codes
    from sklearn.cluster import KMeans

    names = np.zeros(len(codes), dtype=int) if records is None else np.unique(records, return_inverse=True)[1]
    out = []
    for g in np.unique(names):
        group = codes[names == g]
        m = max(1, int(round(size * len(group) / len(codes))))
        if m >= len(group):
            out.append(group)
            continue
        km = KMeans(n_clusters=m, n_init=1, max_iter=30, random_state=seed).fit(group.astype(np.float64))
        out.append(km.cluster_centers_.astype(np.float32))
    return np.ascontiguousarray(np.concatenate(out))


def _kd_tree(reference: np.ndarray) -> Any:
    """scipy's k-d tree over a low-dimensional reference set (the timing and rhythm terms: 3-4 dimensions),
    exact and 2-4x faster there than sklearn's neighbour search; the queries' float32 values are read
    as float64, as the tree stores the reference."""
    from scipy.spatial import cKDTree

    return cKDTree(np.asarray(reference, dtype=np.float64))


def _log_rr(rr: np.ndarray) -> np.ndarray:
    return np.log(np.clip(np.asarray(rr, dtype=np.float64), 1e-3, None))


def _robust(values: np.ndarray) -> tuple[float, float]:
    q25, q50, q75 = np.quantile(values, [0.25, 0.5, 0.75])
    return float(q50), float(max(q75 - q25, 1e-6))
