"""LoanBookGAN (CTGAN-style), LoanPricer and the evaluate-loans metrics."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.exceptions import NotFittedError

from genforge.errors import DataError, GenforgeError
from genforge.finance.loans import evaluate as el
from genforge.finance.loans.data import ConditionalRows, TableEncoder, _apportion, infer_discrete_columns
from genforge.finance.loans.models import LoanBookGAN, LoanGAN, LoanGANConfig, LoanPricer


def _book(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """A hand-made loan book: grade drives default; amount is bimodal; term is a small-integer code."""
    rng = np.random.default_rng(seed)
    grade = rng.choice(["A", "B", "C"], size=n, p=[0.6, 0.3, 0.1])
    purpose = rng.choice(["car", "home"], size=n, p=[0.7, 0.3])
    amount = np.where(rng.random(n) < 0.5, rng.normal(1000, 100, n), rng.normal(5000, 300, n)).round()
    term = rng.choice([12, 24, 36], size=n)
    p_bad = np.select([grade == "A", grade == "B"], [0.05, 0.3], 0.8)
    default = np.where(rng.random(n) < p_bad, "bad", "good")
    return pd.DataFrame(
        {
            "grade": grade,
            "purpose": purpose,
            "credit_amount": amount.astype(np.int64),
            "term": term,
            "creditability": default,
        }
    )


def _gan(**kw) -> LoanBookGAN:
    params = dict(steps=400, batch_size=100, hidden=(64, 64), latent_dim=16, pac=10, lr=2e-4, progress=False)
    params.update(kw)
    return LoanBookGAN(**params)


@pytest.fixture(scope="module")
def book() -> pd.DataFrame:
    return _book()


@pytest.fixture(scope="module")
def fitted(book) -> LoanBookGAN:
    return _gan().fit(book)


def test_infer_discrete_columns(book):
    assert infer_discrete_columns(book) == ["grade", "purpose", "term", "creditability"]


def test_encoder_round_trip_is_close(book):
    enc = TableEncoder.fit(book, infer_discrete_columns(book))
    x = enc.encode(book, np.random.default_rng(0))
    assert x.shape == (len(book), enc.width)
    back = enc.decode(x)
    pd.testing.assert_frame_equal(
        back[["grade", "purpose", "term", "creditability"]],
        book[["grade", "purpose", "term", "creditability"]],
        check_dtype=False,
    )
    assert np.abs(back["credit_amount"] - book["credit_amount"]).max() <= 1  # rounding to integers only


def test_gan_learns_and_respects_categories(book, fitted):
    discrete = infer_discrete_columns(book)
    untrained = _gan(steps=1).fit(book).sample(300, seed=0)
    synth = fitted.sample(300, seed=0)
    assert list(synth.columns) == list(book.columns) and len(synth) == 300
    for col in discrete:
        assert set(synth[col].unique()) <= set(book[col].unique())
    assert synth["credit_amount"].between(book["credit_amount"].min(), book["credit_amount"].max()).all()
    assert synth["term"].dtype.kind == "i"
    q_before = el.quality_report(book, untrained, discrete)["quality"]
    q_after = el.quality_report(book, synth, discrete)["quality"]
    assert q_after > q_before + 0.03


def test_conditions_hold_and_are_checked(fitted):
    s = fitted.sample(40, conditions={"grade": "C"}, seed=1)
    assert len(s) == 40 and (s["grade"] == "C").all()
    s = fitted.sample(20, conditions={"term": 36}, seed=1)
    assert (s["term"] == 36).all()
    with pytest.raises(GenforgeError, match="unknown value"):
        fitted.sample(5, conditions={"grade": "Z"})
    with pytest.raises(GenforgeError, match="continuous"):
        fitted.sample(5, conditions={"credit_amount": 1000})
    with pytest.raises(GenforgeError, match="not in the loan table"):
        fitted.sample(5, conditions={"nope": 1})


def test_save_load_round_trip(fitted, tmp_path):
    fitted.save(tmp_path / "lg")
    again = LoanBookGAN.load(tmp_path / "lg")
    assert again.target_ == fitted.target_ == "creditability"
    pd.testing.assert_frame_equal(again.sample(30, seed=3), fitted.sample(30, seed=3))


def test_apportion_sums_and_follows_shares():
    assert _apportion(10, np.array([0.7, 0.3])).tolist() == [7, 3]
    assert _apportion(7, np.array([1.0, 1.0, 1.0])).sum() == 7
    assert _apportion(1, np.array([0.2, 0.8])).tolist() == [0, 1]


def test_unconditioned_sample_keeps_the_real_class_balance(book, fitted):
    """Sampling is stratified by the target: the bad share is the training share, to the row."""
    for n in (100, 37):
        synth = fitted.sample(n, seed=5)
        expected = _apportion(n, np.asarray(fitted.frequencies_["creditability"]))
        counts = synth["creditability"].value_counts()
        assert [int(counts.get(c, 0)) for c in ("bad", "good")] == expected.tolist()
    assert fitted.sample(20, conditions={"grade": "A"}, seed=1)["grade"].eq("A").all()


def test_without_target_sampling_follows_ctgan(book):
    gan = _gan(steps=2, target=None).fit(book)
    assert gan.target_ is None and len(gan.sample(25, seed=0)) == 25
    with pytest.raises(DataError, match="continuous"):
        _gan(steps=2, target="credit_amount").fit(book)
    with pytest.raises(GenforgeError, match="target_share"):
        _gan(steps=2, target_share=1.5).fit(book)
    with pytest.raises(GenforgeError, match="ema_decay"):
        _gan(steps=2, ema_decay=1.5).fit(book)
    assert _gan(steps=3000)._ema_decay() == pytest.approx(0.999)
    assert _gan(steps=10)._ema_decay() == pytest.approx(0.9) and _gan(ema_decay=None)._ema_decay() is None


def test_target_share_sets_how_often_the_target_is_conditioned():
    codes = [np.array([0, 1] * 50), np.array([0, 1, 2, 3] * 25)]
    rows = ConditionalRows(
        np.zeros((100, 3), np.float32), codes, [2, 4], seed=0, column_probs=np.array([0.2, 0.8])
    )
    conds = torch.stack([rows[i % 100][1] for i in range(2000)])
    assert conds[:, 2:].sum().item() / 2000 == pytest.approx(0.8, abs=0.03)


def test_critic_width_and_dropout_are_its_own():
    cfg = LoanGANConfig(
        in_features=6,
        output_spans=((6, "softmax"),),
        cond_dim=6,
        hidden=(16,),
        pac=2,
        hidden_d=(8, 8),
        dropout_d=0.5,
    )
    gan = LoanGAN(cfg)
    assert any(isinstance(m, torch.nn.Dropout) for m in gan.discriminator.modules())
    widths = [m.out_features for m in gan.discriminator.modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [8, 8, 1]
    assert gan.discriminator(torch.zeros(4, 6), torch.zeros(4, 6)).shape == (2,)
    with pytest.raises(ValueError, match="dropout_d"):
        LoanGANConfig(in_features=6, dropout_d=1.0)


def test_fit_rejects_bad_tables(book):
    with_nan = book.copy()
    with_nan.loc[3, "credit_amount"] = np.nan
    with pytest.raises(DataError, match="missing"):
        _gan().fit(with_nan)
    with pytest.raises(DataError, match="rows"):
        _gan().fit(book.head(5))
    with pytest.raises(DataError, match="not in the table"):
        _gan(discrete_columns=["nope"]).fit(book)
    with pytest.raises(DataError, match="no categorical"):
        _gan().fit(pd.DataFrame({"a": np.random.default_rng(0).normal(size=50)}))
    with pytest.raises(NotFittedError, match="not fitted"):
        _gan().sample(3)


# --------------------------------------------------------------------------------------------- pricing


def test_pricing_formula_by_hand(book):
    pricer = LoanPricer(lgd=0.4, funding_cost=0.03, margin=0.02).fit(book)
    priced = pricer.price(book.drop(columns=["creditability"]))
    np.testing.assert_allclose(priced["rate"], priced["pd"] * 0.4 + 0.05)
    np.testing.assert_allclose(priced["expected_loss"], priced["pd"] * 0.4 * book["credit_amount"])
    # a loan with PD 0.1: 0.1 x 0.4 + 0.03 + 0.02 = 0.09
    pricer.predict_pd = lambda df: np.full(len(df), 0.1)
    assert pricer.price(book.head(1))["rate"].iloc[0] == pytest.approx(0.09)


def test_pd_model_ranks_grades(book):
    for model in ("logistic", "gbm"):
        pricer = LoanPricer(model=model).fit(book)
        pd_ = pricer.predict_pd(book)
        assert (
            pd_[book["grade"] == "C"].mean()
            > pd_[book["grade"] == "B"].mean()
            > pd_[book["grade"] == "A"].mean()
        )


def test_gbm_fits_wide_one_hot_tables():
    """Many categories make the one-hot block sparse; gradient boosting needs it dense."""
    rng = np.random.default_rng(0)
    wide = pd.DataFrame({f"c{j}": rng.choice([f"v{k}" for k in range(12)], 200) for j in range(6)})
    wide["creditability"] = np.where(wide["c0"].isin(["v0", "v1", "v2"]), "bad", "good")
    pd_ = LoanPricer(model="gbm", amount_column=None).fit(wide).predict_pd(wide)
    assert pd_[wide["creditability"] == "bad"].mean() > pd_[wide["creditability"] == "good"].mean()


def test_pd_model_cv_uses_real_rows_only(book):
    aucs = {m: el.pd_model_cv(book, "creditability", "bad", m) for m in el.PD_MODELS}
    assert el.PD_MODELS[0] == LoanPricer().model == "logistic"
    assert all(0.7 < a <= 1.0 for a in aucs.values())


def test_pricer_errors(book):
    with pytest.raises(DataError, match="target column"):
        LoanPricer(target="default").fit(book)
    with pytest.raises(GenforgeError, match="lgd"):
        LoanPricer(lgd=1.5).fit(book)
    with pytest.raises(GenforgeError, match="model"):
        LoanPricer(model="svm").fit(book)
    with pytest.raises(GenforgeError, match="regularisation"):
        LoanPricer(c=0).fit(book)
    with pytest.raises(DataError, match="missing column"):
        LoanPricer().fit(book).predict_pd(book.drop(columns=["grade"]))
    with pytest.raises(DataError, match="no bad loans"):
        LoanPricer().fit(book.assign(creditability="good"))


# --------------------------------------------------------------------------------------------- evaluation


def test_quality_of_identical_tables_is_one_and_disjoint_categories_zero(book):
    discrete = infer_discrete_columns(book)
    rep = el.quality_report(book, book, discrete)
    assert rep["quality"] == pytest.approx(1.0)
    assert el.column_shape(pd.Series(["a"] * 5), pd.Series(["b"] * 5), True) == pytest.approx(0.0)
    # half the mass moved: TV = 0.5
    assert el.column_shape(pd.Series(["a", "a"]), pd.Series(["a", "b"]), True) == pytest.approx(0.5)
    # perfectly correlated vs perfectly anti-correlated: 1 - |1 - (-1)| / 2 = 0
    real = pd.DataFrame({"x": [1.0, 2, 3, 4], "y": [1.0, 2, 3, 4]})
    synth = pd.DataFrame({"x": [1.0, 2, 3, 4], "y": [4.0, 3, 2, 1]})
    assert el.pair_trend(real, synth, "x", "y", set()) == pytest.approx(0.0)


def test_dcr_of_copies_and_holdout(book):
    discrete = infer_discrete_columns(book)
    train, hold = book.iloc[:200], book.iloc[200:]
    copies = el.dcr_privacy(train, train.iloc[:100], hold, discrete)
    assert copies["dcr_ratio"] == pytest.approx(0.0) and copies["exact_copies"] == 1.0
    fresh = el.dcr_privacy(train, _book(100, seed=9), hold, discrete)
    assert 0.5 < fresh["dcr_ratio"] < 2.0


def test_tstr_of_real_data_matches_trtr_and_of_broken_data_does_not(book):
    """TSTR computed by the protocol's own scorer: a "synthetic" book that is a resample of the real
    training rows trains as good a PD model as the real rows (ratio near 1); one whose outcomes are
    shuffled (every feature kept, the link to default cut) does not (ratio near 0.5 / TRTR)."""
    train, hold = el.stratified_split(book, "creditability", 0.3, seed=0)
    cfg = el.LoanEvalConfig()
    trtr = {m: el.auroc_on_holdout(train, hold, "creditability", "bad", m) for m in el.PD_MODELS}
    assert trtr["logistic"] > 0.75
    discrete = infer_discrete_columns(book)
    resampled = train.sample(len(train), replace=True, random_state=1).reset_index(drop=True)
    good = el.score_synthetic(train, hold, resampled, discrete, cfg, trtr)
    assert 0.9 < good["tstr_over_trtr"] <= 1.1
    broken = resampled.copy()
    broken["creditability"] = np.random.default_rng(2).permutation(broken["creditability"].to_numpy())
    bad = el.score_synthetic(train, hold, broken, discrete, cfg, trtr)
    assert bad["tstr_over_trtr"] < 0.85 and bad["tstr_auroc"] < good["tstr_auroc"] - 0.1


def test_sdv_reported_as_skipped_when_missing():
    reason = el._sdv_available()
    try:
        import sdv  # noqa: F401
    except ImportError:
        assert reason is not None and "sdv" in reason
    else:  # pragma: no cover
        assert reason is None


def test_evaluate_loans_reports_every_pd_model(book):
    cfg = el.LoanEvalConfig(
        seeds=1, steps=3, batch_size=100, gan={"hidden": (16,), "latent_dim": 8}, holdout=0.3
    )
    out = el.evaluate_loans(book, cfg, log=lambda m: None)
    assert set(out["pd_models"]) == set(el.PD_MODELS)
    assert out["tstr_over_trtr"] == out["pd_models"]["logistic"]["tstr_over_trtr"]
    assert set(out["pd_model_cv"]["cv_auroc_real_train"]) == set(el.PD_MODELS)
    assert out["gan_params"]["target"] == "creditability" and out["gan_params"]["steps"] == 3
    assert out["per_seed"][0]["n_train"] == 210 and out["per_seed"][0]["n_test"] == 90


def test_inner_validation_stays_inside_the_training_part(book):
    cfg = el.LoanEvalConfig(
        seeds=1, steps=3, batch_size=100, gan={"hidden": (16,), "latent_dim": 8}, holdout=0.3
    )
    out = el.evaluate_loans(book, dataclasses.replace(cfg, inner_validation=True), log=lambda m: None)
    assert out["per_seed"][0]["n_train"] == 147 and out["per_seed"][0]["n_test"] == 63
    assert out["settings"]["inner_validation"] is True
