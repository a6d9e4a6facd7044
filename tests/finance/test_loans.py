"""LoanBookGAN (CTGAN-style), LoanPricer and the evaluate-loans metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from genforge.errors import DataError, GenforgeError
from genforge.finance import evaluate_loans as el
from genforge.finance.loans import LoanBookGAN, LoanPricer, TableEncoder, infer_discrete_columns


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
    params = dict(steps=250, batch_size=100, hidden=(64, 64), latent_dim=16, pac=10, lr=2e-4, progress=False)
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
    pd.testing.assert_frame_equal(again.sample(30, seed=3), fitted.sample(30, seed=3))


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
    with pytest.raises(GenforgeError, match="not fitted"):
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


def test_pricer_errors(book):
    with pytest.raises(DataError, match="target column"):
        LoanPricer(target="default").fit(book)
    with pytest.raises(GenforgeError, match="lgd"):
        LoanPricer(lgd=1.5).fit(book)
    with pytest.raises(GenforgeError, match="model"):
        LoanPricer(model="svm").fit(book)
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


def test_tstr_of_real_data_matches_trtr(book):
    train, hold = el.stratified_split(book, "creditability", 0.3, seed=0)
    trtr = el.auroc_on_holdout(train, hold, "creditability", "bad")
    assert trtr > 0.75


def test_sdv_reported_as_skipped_when_missing():
    reason = el._sdv_available()
    try:
        import sdv  # noqa: F401
    except ImportError:
        assert reason is not None and "sdv" in reason
    else:  # pragma: no cover
        assert reason is None
