"""Evaluation of synthetic loan books (``genforge finance evaluate-loans``).

Protocol (German credit, 1,000 loans; stratified 80/20 split into training and holdout per seed):

- **Quality** in the manner of SDMetrics' QualityReport: the mean of *column shapes* (per column:
  1 - Kolmogorov-Smirnov statistic for continuous columns, 1 - total-variation distance for
  categorical ones) and *column pair trends* (per pair: 1 - |Pearson_r - Pearson_s| / 2 for two
  continuous columns; 1 - total-variation distance of the joint frequencies otherwise, continuous
  columns binned into 10 quantile bins of the real data). Synthetic vs the training rows.
- **Utility**: AUROC on the real holdout of the PD model trained on the synthetic rows (TSTR) and on
  the real training rows (TRTR); the headline is their ratio, measured with the PD model that
  ``price-loans`` uses by default (:class:`LoanPricer`: L2 logistic regression, C = 0.1). Every PD
  model kind is reported beside it (``pd_models``), and so is why the default is the default: its
  5-fold cross-validated AUROC on the *real training part* of each split (``pd_model_cv``), never on
  the holdout. The holdout has 200 loans, so its AUROC is noisy: means come with sds over seeds.
- **Privacy**: distance to closest record (DCR) in a one-hot + min-max space: the median DCR of
  synthetic rows to training rows over the median DCR of holdout rows to training rows (about 1 or
  more = no closer to training rows than fresh real loans), and the share of exact copies.
- Beside sdv's CTGAN on the same splits when ``import sdv`` works (benchmark extra); otherwise the
  JSON records that it was skipped and why.
Anchors (SDGym quality): TVAE 0.881, CTGAN 0.842. Goals: quality >= 0.90, TSTR/TRTR >= 0.95.

Model selection never sees the holdout: ``LoanEvalConfig(inner_validation=True)`` runs the same
protocol inside each training part (a second stratified split, seed + 100, 640 / 160 loans), which
is how LoanBookGAN's defaults (4,000 steps, generator EMA, sampling stratified by the outcome) were
chosen among the settings tried.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from tqdm.auto import tqdm

ANCHORS = {"SDGym TVAE": {"quality": 0.881}, "SDGym CTGAN": {"quality": 0.842}}
GOALS = {"quality": ">= 0.90", "tstr_over_trtr": ">= 0.95"}


# --------------------------------------------------------------------------------------------- quality


def _is_discrete(real: pd.Series, discrete: set[str]) -> bool:
    return str(real.name) in discrete


def column_shape(real: pd.Series, synth: pd.Series, discrete: bool) -> float:
    """KS complement (continuous) or TV complement (categorical) of one column; 1 = identical."""
    if discrete:
        p = real.astype(str).value_counts(normalize=True)
        q = synth.astype(str).value_counts(normalize=True)
        keys = p.index.union(q.index)
        return float(1.0 - 0.5 * np.abs(p.reindex(keys, fill_value=0) - q.reindex(keys, fill_value=0)).sum())
    ks = stats.ks_2samp(real.to_numpy(float), synth.to_numpy(float)).statistic
    return float(1.0 - ks)


def _binned(real: pd.Series, synth: pd.Series, discrete: bool, bins: int = 10) -> tuple[pd.Series, pd.Series]:
    if discrete:
        return real.astype(str), synth.astype(str)
    edges = np.unique(np.quantile(real.to_numpy(float), np.linspace(0, 1, bins + 1)))
    edges[0], edges[-1] = -np.inf, np.inf
    cut = lambda s: pd.Series(np.digitize(s.to_numpy(float), edges[1:-1]), index=s.index).astype(str)  # noqa: E731
    return cut(real), cut(synth)


def pair_trend(real: pd.DataFrame, synth: pd.DataFrame, a: str, b: str, discrete: set[str]) -> float:
    """Correlation similarity (two continuous columns) or contingency similarity (otherwise)."""
    da, db = a in discrete, b in discrete
    if not da and not db:
        r = real[a].astype(float).corr(real[b].astype(float))
        s = synth[a].astype(float).corr(synth[b].astype(float))
        r, s = (0.0 if np.isnan(r) else r), (0.0 if np.isnan(s) else s)
        return float(1.0 - abs(r - s) / 2.0)
    ra, sa = _binned(real[a], synth[a], da)
    rb, sb = _binned(real[b], synth[b], db)
    p = pd.crosstab(ra, rb, normalize=True).stack()
    q = pd.crosstab(sa, sb, normalize=True).stack()
    keys = p.index.union(q.index)
    return float(1.0 - 0.5 * np.abs(p.reindex(keys, fill_value=0) - q.reindex(keys, fill_value=0)).sum())


def quality_report(real: pd.DataFrame, synth: pd.DataFrame, discrete: list[str]) -> dict[str, Any]:
    """SDMetrics-like quality: ``quality`` = mean(column_shapes, column_pair_trends), with the details."""
    dset = set(discrete)
    cols = [str(c) for c in real.columns]
    missing = [c for c in cols if c not in synth.columns]
    if missing:
        raise ValueError(f"synthetic table lacks column(s) {missing}")
    shapes = {c: column_shape(real[c], synth[c], c in dset) for c in cols}
    pairs = {f"{a}|{b}": pair_trend(real, synth, a, b, dset) for a, b in itertools.combinations(cols, 2)}
    shape_score = float(np.mean(list(shapes.values())))
    pair_score = float(np.mean(list(pairs.values()))) if pairs else shape_score
    return {
        "quality": (shape_score + pair_score) / 2.0,
        "column_shapes": shape_score,
        "column_pair_trends": pair_score,
        "per_column": shapes,
    }


# ----------------------------------------------------------------------------------------- utility, privacy


PD_MODELS = ("logistic", "gbm")  # every LoanPricer kind; the first is price-loans' default


def auroc_on_holdout(
    train: pd.DataFrame, holdout: pd.DataFrame, target: str, bad_value: Any, model: str = "logistic"
) -> float:
    """AUROC on ``holdout`` of the PD model (:class:`LoanPricer` with its defaults) fitted on ``train``."""
    from sklearn.metrics import roc_auc_score

    from genforge.finance.loans.models import LoanPricer

    pricer = LoanPricer(target=target, bad_value=bad_value, model=model).fit(train)
    y = (holdout[target].astype(str) == str(bad_value)).to_numpy(int)
    return float(roc_auc_score(y, pricer.predict_pd(holdout)))


def pd_model_cv(
    train: pd.DataFrame, target: str, bad_value: Any, model: str, folds: int = 5, seed: int = 0
) -> float:
    """Mean AUROC of a PD model kind over stratified ``folds``-fold CV of ``train`` (real rows only).

    This is what the default PD model is chosen on: its merit on real loans, with no holdout and no
    synthetic data involved.
    """
    from sklearn.model_selection import StratifiedKFold

    y = (train[target].astype(str) == str(bad_value)).to_numpy(int)
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return float(
        np.mean(
            [
                auroc_on_holdout(train.iloc[a], train.iloc[b], target, bad_value, model)
                for a, b in cv.split(train, y)
            ]
        )
    )


def _numeric_space(
    reference: pd.DataFrame, frames: list[pd.DataFrame], discrete: list[str]
) -> list[np.ndarray]:
    """One-hot categoricals and min-max (by ``reference``) continuous columns."""
    out = []
    cont = [c for c in reference.columns if c not in discrete]
    lo, hi = reference[cont].min(), reference[cont].max()
    for f in frames:
        parts = [((f[cont].astype(float) - lo) / (hi - lo).replace(0, 1)).to_numpy(float)]
        for c in discrete:
            cats = sorted(reference[c].astype(str).unique())
            parts.append((f[c].astype(str).to_numpy()[:, None] == np.asarray(cats)[None, :]).astype(float))
        out.append(np.concatenate(parts, 1))
    return out


def dcr_privacy(
    train: pd.DataFrame, synth: pd.DataFrame, holdout: pd.DataFrame, discrete: list[str]
) -> dict[str, float]:
    """Distance to closest record: ``dcr_ratio`` (median synthetic / median holdout DCR), ``exact_copies``."""
    from genforge.metrics import nearest_neighbour_distances

    t, s, h = _numeric_space(train, [train, synth, holdout], discrete)
    ds, dh = nearest_neighbour_distances(s, t), nearest_neighbour_distances(h, t)
    return {
        "dcr_ratio": float(np.median(ds) / max(np.median(dh), 1e-12)),
        "dcr_synthetic_median": float(np.median(ds)),
        "dcr_holdout_median": float(np.median(dh)),
        "exact_copies": float((ds < 1e-9).mean()),
    }


# --------------------------------------------------------------------------------------------- protocol


@dataclasses.dataclass
class LoanEvalConfig:
    seeds: int = 3
    first_seed: int = 0  # seeds first_seed .. first_seed + seeds - 1 (lets seeds run in separate processes)
    steps: int = 4000  # LoanBookGAN's default
    batch_size: int = 500
    holdout: float = 0.2
    target: str = "creditability"
    bad_value: str = "bad"
    progress: bool = False
    pd_model: str = "logistic"  # the headline PD model: price-loans' default
    gan: dict = dataclasses.field(default_factory=dict)  # LoanBookGAN overrides; {} = its defaults
    inner_validation: bool = False  # True: split each training part again and never touch the holdout


def stratified_split(
    df: pd.DataFrame, target: str, holdout: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    train, hold = train_test_split(df, test_size=holdout, stratify=df[target], random_state=seed)
    return train.reset_index(drop=True), hold.reset_index(drop=True)


def score_synthetic(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synth: pd.DataFrame,
    discrete: list[str],
    cfg: LoanEvalConfig,
    trtr: dict[str, float],
) -> dict[str, Any]:
    """Quality, TSTR / TRTR for every PD model kind (headline: the default one) and DCR privacy.

    ``trtr`` maps each PD model kind to its AUROC when trained on the real training rows.
    """
    rep = quality_report(train, synth, discrete)
    tstr = {m: auroc_on_holdout(synth, holdout, cfg.target, cfg.bad_value, m) for m in trtr}
    main = cfg.pd_model
    return {
        "quality": rep["quality"],
        "column_shapes": rep["column_shapes"],
        "column_pair_trends": rep["column_pair_trends"],
        "tstr_auroc": tstr[main],
        "trtr_auroc": trtr[main],
        "tstr_over_trtr": tstr[main] / trtr[main],
        **{f"tstr_over_trtr_{m}": tstr[m] / trtr[m] for m in trtr},
        **{f"tstr_auroc_{m}": tstr[m] for m in trtr},
        **{f"trtr_auroc_{m}": trtr[m] for m in trtr},
        **dcr_privacy(train, synth, holdout, discrete),
    }


def _sdv_available() -> str | None:
    """None when sdv imports, else the reason it cannot be used."""
    try:
        import sdv  # noqa: F401
    except Exception as exc:  # ImportError, or a broken install
        return f"sdv not importable here ({type(exc).__name__}: {exc}); it is in no installed extra"
    return None


def _sdv_ctgan(train: pd.DataFrame, n: int, seed: int, epochs: int) -> pd.DataFrame:  # pragma: no cover
    from sdv.metadata import Metadata
    from sdv.single_table import CTGANSynthesizer

    metadata = Metadata.detect_from_dataframe(train)
    synth = CTGANSynthesizer(metadata, epochs=epochs, verbose=False)
    synth.fit(train)
    return synth.sample(n)


def evaluate_loans(
    df: pd.DataFrame, cfg: LoanEvalConfig, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Run the protocol over ``cfg.seeds`` splits; headline keys (means) at the top level."""
    from genforge.finance.loans.models import LoanBookGAN, infer_discrete_columns

    discrete = infer_discrete_columns(df)
    sdv_reason = _sdv_available()
    rows, sdv_rows = [], []
    if cfg.pd_model not in PD_MODELS:
        raise ValueError(f"LoanEvalConfig.pd_model: expected one of {PD_MODELS}, got {cfg.pd_model!r}")
    pd_cv: dict[str, list[float]] = {m: [] for m in PD_MODELS}
    seeds = range(cfg.first_seed, cfg.first_seed + cfg.seeds)
    for seed in tqdm(seeds, desc="evaluate-loans seeds", disable=not cfg.progress or cfg.seeds < 2):
        t0 = time.time()
        train, hold = stratified_split(df, cfg.target, cfg.holdout, seed)
        if cfg.inner_validation:  # for choosing settings: the holdout is set aside unseen
            train, hold = stratified_split(train, cfg.target, cfg.holdout, seed + 100)
        for m in PD_MODELS:  # the default's merit on real loans: CV on the training part only
            pd_cv[m].append(pd_model_cv(train, cfg.target, cfg.bad_value, m, seed=seed))
        trtr = {m: auroc_on_holdout(train, hold, cfg.target, cfg.bad_value, m) for m in PD_MODELS}
        gan_params = {"steps": cfg.steps, "batch_size": cfg.batch_size, "target": cfg.target, **cfg.gan}
        gan = LoanBookGAN(seed=seed, progress=cfg.progress, **gan_params).fit(train)
        synth = gan.sample(len(train), seed=seed)
        row = {
            "seed": seed,
            "n_train": len(train),
            "n_test": len(hold),
            **score_synthetic(train, hold, synth, discrete, cfg, trtr),
            "seconds": round(time.time() - t0, 1),
        }
        rows.append(row)
        log(
            f"evaluate-loans seed {seed}: "
            + ", ".join(f"{k}={v:.4f}" for k, v in row.items() if isinstance(v, float))
        )
        if sdv_reason is None:  # pragma: no cover - sdv is not installed in this environment
            epochs = max(1, cfg.steps * cfg.batch_size // max(len(train), 1))
            peer = _sdv_ctgan(train, len(train), seed, epochs)
            sdv_rows.append({"seed": seed, **score_synthetic(train, hold, peer, discrete, cfg, trtr)})
    keys = [
        "quality",
        "column_shapes",
        "column_pair_trends",
        "tstr_auroc",
        "trtr_auroc",
        "tstr_over_trtr",
        "dcr_ratio",
        "exact_copies",
    ]
    keys += [f"{k}_{m}" for m in PD_MODELS for k in ("tstr_over_trtr", "tstr_auroc", "trtr_auroc")]
    out: dict[str, Any] = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    out.update(
        {f"{k}_sd": float(np.std([r[k] for r in rows], ddof=1)) if len(rows) > 1 else 0.0 for k in keys}
    )
    out["pd_models"] = {
        m: {
            "tstr_over_trtr": out[f"tstr_over_trtr_{m}"],
            "tstr_over_trtr_sd": out[f"tstr_over_trtr_{m}_sd"],
            "tstr_auroc": out[f"tstr_auroc_{m}"],
            "trtr_auroc": out[f"trtr_auroc_{m}"],
        }
        for m in PD_MODELS
    }
    out["pd_model_cv"] = {
        "headline_model": cfg.pd_model,
        "best_on_real_cv": max(PD_MODELS, key=lambda m: float(np.mean(pd_cv[m]))),
        "cv_auroc_real_train": {m: float(np.mean(v)) for m, v in pd_cv.items()},
        "cv_auroc_real_train_per_seed": pd_cv,
    }
    out["gan_params"] = {
        k: (list(v) if isinstance(v, tuple) else v)
        for k, v in vars(gan).items()
        if not k.endswith("_") and k not in ("seed", "progress")
    }
    out["per_seed"] = rows
    out["sdv_ctgan"] = (
        {k: float(np.mean([r[k] for r in sdv_rows])) for k in keys} if sdv_rows else {"skipped": sdv_reason}
    )
    out.update(
        settings=dataclasses.asdict(cfg),
        anchors=ANCHORS,
        goals=GOALS,
        discrete_columns=discrete,
        n_rows=len(df),
    )
    return out
