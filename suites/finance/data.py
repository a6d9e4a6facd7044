"""Finance data shared by the products: price tables (CSV/Parquet OHLCV) read and validated, the
bundled defaults, returns and range-based variance estimators. (Loan tables:
:mod:`genforge.finance.loans.data`.)

Every problem with a user's file is a :class:`genforge.errors.DataError` whose one-line message
names the file, the field and what was expected, because the CLI prints exactly that line and the
dashboard shows it with ``st.error``. Row numbers in messages count data rows from 1 (the header is
not a row), which is the line number minus one in a CSV file.

Units: log returns are in **percent** (``100 * diff(log price)``), so variances are in percent
squared, the convention of the ``arch`` package and of the volatility literature.
"""

from __future__ import annotations

import io
import math
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genforge.errors import DataError

PRICE_COLUMNS: tuple[str, ...] = ("Open", "High", "Low", "Close")
"""Columns a price table must have (Volume and Adj Close are optional and kept when present)."""

OPTIONAL_COLUMNS: tuple[str, ...] = ("Adj Close", "Volume")
DATE_NAMES: tuple[str, ...] = ("date", "datetime", "timestamp", "time", "day")
MIN_HISTORY = 30
"""Fewest price rows :func:`load_prices` accepts by default (a forecaster needs many more)."""
MAX_GAP_DAYS = 10
"""Business days between two consecutive rows above which a gap is reported (two weeks; holidays and
market closures such as September 2001 stay below it)."""
_DAY_MONTH = re.compile(r"^\s*(\d{1,2})([./-])(\d{1,2})\2(\d{4}|\d{2})(?![\d])(.*)$")


class DataWarning(UserWarning):
    """Data that can be used but may give a misleading answer (a long gap in a price series).

    The finance commands print it as one ``warning: ...`` line; ``strict_gaps`` turns it into an error.
    """


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV (``.csv``/``.txt``) or Parquet (``.parquet``/``.pq``) file as it is.

    Raises DataError for a missing file, an unknown extension or a file the reader rejects.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found; expected a CSV or Parquet file")
    suffix = path.suffix.lower()
    try:
        if suffix in {".parquet", ".pq"}:
            return _named(pd.read_parquet(path), str(path))
        if suffix in {".csv", ".txt"}:
            frame = _semicolon_aware(pd.read_csv(path), lambda: pd.read_csv(path, sep=";"), str(path))
            return _named(frame, str(path))
    except DataError:
        raise
    except Exception as exc:  # the readers raise many types; one line for the user
        raise DataError(f"{path}: cannot be read as {suffix[1:]} ({type(exc).__name__}: {exc})") from None
    raise DataError(f"{path}: unknown file type {suffix!r}; expected .csv or .parquet")


def _named(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """``frame`` with ``attrs["source"]`` set, so later checks (a loan table's) name the file it came from."""
    frame.attrs["source"] = source
    return frame


def _semicolon_aware(frame: pd.DataFrame, reread: Any, source: str) -> pd.DataFrame:
    """A CSV read as one column whose name holds semicolons was written with ``;`` (European Excel):
    read it again with that delimiter, decimal commas refused with a message saying what was seen."""
    if frame.shape[1] != 1 or ";" not in str(frame.columns[0]):
        return frame
    frame = reread()
    sample = frame.select_dtypes("object").head(20).astype(str)
    if sample.apply(lambda col: col.str.fullmatch(r"-?\d+,\d+").all()).any():
        raise DataError(f"{source}: semicolon-delimited with decimal commas (e.g. {sample.iloc[0, -1]!r}); "
                        "expected decimal points (save the CSV with ',' delimiters or '.' decimals)")
    return frame


def read_uploaded_table(name: str, data: bytes) -> pd.DataFrame:
    """Read an uploaded file's bytes (the dashboard) with the same rules as :func:`read_table`."""
    suffix = Path(name).suffix.lower()
    try:
        if suffix in {".parquet", ".pq"}:
            return _named(pd.read_parquet(io.BytesIO(data)), name)
        if suffix in {".csv", ".txt"}:
            return _named(pd.read_csv(io.BytesIO(data)), name)
    except Exception as exc:
        raise DataError(f"{name}: cannot be read as {suffix[1:]} ({type(exc).__name__}: {exc})") from None
    raise DataError(f"{name}: unknown file type {suffix!r}; expected .csv or .parquet")


def load_prices(
    path: str | Path,
    *,
    sort: bool = True,
    min_rows: int = MIN_HISTORY,
    required: tuple[str, ...] = PRICE_COLUMNS,
    dayfirst: bool | None = None,
    max_gap_days: int | None = MAX_GAP_DAYS,
    strict_gaps: bool = False,
) -> pd.DataFrame:
    """Read and validate a daily price table (see :func:`validate_prices`)."""
    return validate_prices(
        read_table(path), source=str(path), sort=sort, min_rows=min_rows, required=required,
        dayfirst=dayfirst, max_gap_days=max_gap_days, strict_gaps=strict_gaps,
    )


def validate_prices(
    frame: pd.DataFrame,
    source: str = "<prices>",
    *,
    sort: bool = True,
    min_rows: int = MIN_HISTORY,
    required: tuple[str, ...] = PRICE_COLUMNS,
    dayfirst: bool | None = None,
    max_gap_days: int | None = MAX_GAP_DAYS,
    strict_gaps: bool = False,
) -> pd.DataFrame:
    """Check a price table and return it in the suite's form.

    The result has a ``DatetimeIndex`` named ``Date`` (increasing, unique) and float columns
    ``Open, High, Low, Close`` (plus ``Adj Close`` / ``Volume`` when present). Column names are
    matched case-insensitively (``close``, ``adj_close``). The date is the index when it already is a
    DatetimeIndex, else a column called date/datetime/timestamp/time/day, else the first column if
    all of it parses as dates. With ``sort=False`` dates out of order are an error instead of being
    sorted. Errors (DataError, naming ``source``): missing date or price columns, unparseable or
    duplicate dates, non-numeric, missing, non-positive or inconsistent (High < Low) prices, and
    fewer than ``min_rows`` rows.

    Dates written day and month first with numbers (``03/04/2020``) are read in one order for the whole
    column: the order a value above 12 shows, else ``dayfirst`` (True: day first, False: month first);
    when nothing decides it the table is refused rather than guessed (pandas would read each date in
    whichever order parses, mixing the two). ISO and month-name dates are unambiguous. Consecutive rows
    more than ``max_gap_days`` business days apart give a :class:`DataWarning` (the return across the gap
    would count as one day's), or a DataError with ``strict_gaps``; ``max_gap_days=None`` turns it off.
    """
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{source}: expected a table of prices, got {type(frame).__name__}")
    df = frame.copy()
    if isinstance(df.index, pd.DatetimeIndex):
        dates = pd.Series(df.index, index=range(len(df)))
        df = df.reset_index(drop=True)
        date_name = df.index.name or "Date"
    else:
        df = df.reset_index(drop=True)
        date_name = _find_date_column(df, source)
        dates = _parse_dates(df[date_name], source, date_name, dayfirst)
        df = df.drop(columns=[date_name])
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_localize(None)

    renamed = _canonical_columns(df.columns)
    df = df.rename(columns=renamed)
    missing = [c for c in required if c not in df.columns]
    if missing:
        names = ", ".join(repr(c) for c in missing)
        raise DataError(
            f"{source}: missing column(s) {names}; expected {', '.join(required)} (Volume optional)"
        )
    keep = [c for c in (*PRICE_COLUMNS, *OPTIONAL_COLUMNS) if c in df.columns]
    df = df[keep]

    for col in keep:
        values = pd.to_numeric(df[col], errors="coerce")
        bad = values.isna().to_numpy()
        if bad.any():
            first = int(np.flatnonzero(bad)[0]) + 1
            raise DataError(
                f"{source}: column {col!r} has {int(bad.sum())} non-numeric or missing value(s) "
                f"(first at row {first}); expected numbers"
            )
        if col != "Volume":
            nonpos = (values <= 0).to_numpy()
            if nonpos.any():
                first = int(np.flatnonzero(nonpos)[0]) + 1
                raise DataError(
                    f"{source}: column {col!r} has {int(nonpos.sum())} value(s) <= 0 "
                    f"(first at row {first}); expected positive prices"
                )
        df[col] = values.astype(float)

    if "High" in df.columns and "Low" in df.columns:
        inverted = (df["High"] < df["Low"]).to_numpy()
        if inverted.any():
            first = int(np.flatnonzero(inverted)[0]) + 1
            raise DataError(
                f"{source}: column 'High' is below 'Low' in {int(inverted.sum())} row(s) "
                f"(first at row {first}); expected High >= Low"
            )

    dup = dates.duplicated(keep=False).to_numpy()
    if dup.any():
        rows = np.flatnonzero(dup)[:2] + 1
        day = pd.Timestamp(dates.iloc[rows[0] - 1]).date()
        raise DataError(
            f"{source}: column {date_name!r} has duplicate date {day} (rows {rows[0]} and {rows[1]}); "
            "expected one row per day"
        )
    order = np.diff(dates.to_numpy().astype("datetime64[ns]").astype(np.int64))
    if (order < 0).any():
        if not sort:
            row = int(np.flatnonzero(order < 0)[0]) + 2
            later = pd.Timestamp(dates.iloc[row - 1]).date()
            earlier = pd.Timestamp(dates.iloc[row - 2]).date()
            raise DataError(
                f"{source}: column {date_name!r} is not in increasing order at row {row} "
                f"({later} after {earlier}); "
                "expected dates oldest first (or allow sorting)"
            )
        perm = np.argsort(dates.to_numpy(), kind="stable")
        df = df.iloc[perm]
        dates = dates.iloc[perm]

    if len(df) < min_rows:
        raise DataError(f"{source}: {len(df)} rows of prices; at least {min_rows} are needed")
    if max_gap_days is not None:
        _check_gaps(dates, source, date_name, max_gap_days, strict_gaps)
    if "Close" in df.columns and len(df) > 1:
        spread = float(np.std(np.diff(np.log(df["Close"].to_numpy()))))
        if spread < 1e-8:
            raise DataError(
                f"{source}: column 'Close' is (nearly) constant (std of log returns {spread:.1e}); "
                "expected a price series that moves"
            )
    df.index = pd.DatetimeIndex(dates.to_numpy(), name="Date")
    return df


def _canonical_columns(columns: Any) -> dict[Any, str]:
    """Map user spellings (``close``, ``adj_close``, ``ADJ CLOSE``) to the suite's column names."""
    wanted = {_norm(c): c for c in (*PRICE_COLUMNS, *OPTIONAL_COLUMNS)}
    out: dict[Any, str] = {}
    for col in columns:
        key = _norm(str(col))
        if key in wanted and wanted[key] not in out.values():
            out[col] = wanted[key]
    return out


def _norm(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def _find_date_column(df: pd.DataFrame, source: str) -> str:
    for col in df.columns:
        if _norm(str(col)) in DATE_NAMES:
            return col
    if len(df.columns) and _norm(str(df.columns[0])) not in {_norm(c) for c in PRICE_COLUMNS}:
        first = df.columns[0]
        parsed = pd.to_datetime(df[first].astype(str), errors="coerce", format="mixed")
        if len(df) and parsed.notna().all():
            return first
    raise DataError(f"{source}: no date column found; expected a column named 'Date' (or a date index)")


def _parse_dates(column: pd.Series, source: str, name: str, dayfirst: bool | None = None) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(column):
        parsed = column
    else:
        text = _day_month_as_iso(column.astype(str).reset_index(drop=True), source, name, dayfirst)
        parsed = pd.to_datetime(text, errors="coerce", format="mixed")
    bad = parsed.isna().to_numpy()
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{source}: column {name!r} has {int(bad.sum())} unparseable date(s) "
            f"(first at row {first + 1}: {column.iloc[first]!r}); expected dates like 2018-12-31"
        )
    return parsed.reset_index(drop=True)


def _day_month_as_iso(text: pd.Series, source: str, name: str, dayfirst: bool | None) -> pd.Series:
    """Dates like ``03/04/2020`` rewritten as ISO in one order for the whole column (see validate_prices)."""
    parts = text.str.extract(_DAY_MONTH)
    numeric = parts[0].notna().to_numpy()
    if not numeric.any():
        return text
    first, second = parts[0][numeric].astype(int), parts[2][numeric].astype(int)
    day_first_seen, month_first_seen = (first > 12).to_numpy(), (second > 12).to_numpy()
    rows = np.flatnonzero(numeric)

    def example(mask: np.ndarray) -> str:
        row = int(rows[np.flatnonzero(mask)[0]])
        return f"row {row + 1}: {text.iloc[row]!r}"

    if day_first_seen.any() and month_first_seen.any():
        raise DataError(
            f"{source}: column {name!r} mixes day-first ({example(day_first_seen)}) and month-first "
            f"({example(month_first_seen)}) dates; expected one date format"
        )
    seen = True if day_first_seen.any() else False if month_first_seen.any() else None
    if seen is None and dayfirst is None:
        raise DataError(
            f"{source}: column {name!r} has dates like {text.iloc[int(rows[0])]!r} that read day-first or "
            "month-first (no day above 12 decides it); expected --dayfirst or --monthfirst "
            "(dayfirst=True/False) to say which"
        )
    if seen is not None and dayfirst is not None and seen != dayfirst:
        wanted, found = ("day", "month") if dayfirst else ("month", "day")
        raise DataError(
            f"{source}: column {name!r} has a {found}-first date "
            f"({example(day_first_seen if seen else month_first_seen)}); expected {wanted}-first dates "
            f"as --{wanted}first says"
        )
    parts = parts[numeric]
    day, month = (parts[0], parts[2]) if (seen if seen is not None else dayfirst) else (parts[2], parts[0])
    year = parts[3].astype(int)
    year = year.where(parts[3].str.len() == 4, year + np.where(year < 69, 2000, 1900))  # strptime's %y
    out = text.copy()
    out[numeric] = year.astype(str) + "-" + month.str.zfill(2) + "-" + day.str.zfill(2) + parts[4]
    return out


def _check_gaps(dates: pd.Series, source: str, name: str, max_gap_days: int, strict: bool) -> None:
    """Warn (or refuse, ``strict``) when consecutive dates lie over ``max_gap_days`` business days apart."""
    if len(dates) < 2:
        return
    days = dates.to_numpy().astype("datetime64[D]")
    gaps = np.busday_count(days[:-1], days[1:])
    long = np.flatnonzero(gaps > max_gap_days)
    if not long.size:
        return
    worst = int(long[np.argmax(gaps[long])])
    message = (
        f"{source}: column {name!r} has {long.size} gap(s) longer than {max_gap_days} business days "
        f"(largest {int(gaps[worst])}, {days[worst]} to {days[worst + 1]}; the return across a gap counts "
        "as one day's)"
    )
    if strict:
        raise DataError(f"{message}; expected daily prices without long gaps (or drop --strict-gaps)")
    warnings.warn(f"{message}; raise --max-gap-days or fill the gap if this is wrong", DataWarning,
                  stacklevel=3)


def load_sp500() -> pd.DataFrame:
    """S&P 500 daily OHLCV, 1999-01-04 to 2018-12-31 (5,031 rows), bundled with ``arch``."""
    from arch.data import sp500

    return validate_prices(sp500.load(), source="arch.data.sp500")


def load_nasdaq() -> pd.DataFrame:
    """NASDAQ Composite daily OHLCV, 1999-01-04 to 2018-12-31 (5,031 rows), bundled with ``arch``."""
    from arch.data import nasdaq

    return validate_prices(nasdaq.load(), source="arch.data.nasdaq")


BUNDLED = {"sp500": load_sp500, "nasdaq": load_nasdaq}


def load_prices_or_default(path: str | Path | None, **kwargs: Any) -> pd.DataFrame:
    """A user's price file, or the bundled S&P 500 when ``path`` is None (or ``"sp500"``/``"nasdaq"``)."""
    if path is None:
        return load_sp500()
    if str(path).lower() in BUNDLED:
        return BUNDLED[str(path).lower()]()
    return load_prices(path, **kwargs)


def log_returns(prices: pd.DataFrame | pd.Series, column: str = "Close") -> pd.Series:
    """Daily log returns in percent, ``100 * (log P_t - log P_{t-1})``, indexed by the later date."""
    series = prices[column] if isinstance(prices, pd.DataFrame) else prices
    out = 100.0 * np.log(series.astype(float)).diff().iloc[1:]
    out.name = "return"
    return out


def parkinson(prices: pd.DataFrame) -> pd.Series:
    """Parkinson (1980) range variance in percent squared: ``(100 ln(H/L))^2 / (4 ln 2)``."""
    hl = 100.0 * np.log(prices["High"] / prices["Low"])
    out = hl**2 / (4.0 * math.log(2.0))
    out.name = "parkinson"
    return out


def garman_klass(prices: pd.DataFrame) -> pd.Series:
    """Garman-Klass (1980) variance in percent squared:
    ``0.5 (100 ln(H/L))^2 - (2 ln 2 - 1) (100 ln(C/O))^2`` (floored at 0)."""
    hl = 100.0 * np.log(prices["High"] / prices["Low"])
    co = 100.0 * np.log(prices["Close"] / prices["Open"])
    out = (0.5 * hl**2 - (2.0 * math.log(2.0) - 1.0) * co**2).clip(lower=0.0)
    out.name = "garman_klass"
    return out


def return_frame(prices: pd.DataFrame) -> pd.DataFrame:
    """Per day (from the second price row): ``return`` (percent), ``parkinson`` and ``garman_klass``."""
    return pd.concat([log_returns(prices), parkinson(prices).iloc[1:], garman_klass(prices).iloc[1:]], axis=1)
