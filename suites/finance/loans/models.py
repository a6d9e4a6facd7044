"""Loan books: a CTGAN-style tabular GAN for synthetic loans, and risk-based loan pricing.

:class:`LoanBookGAN` follows CTGAN (Xu et al. 2019, "Modeling tabular data using conditional GAN",
NeurIPS) on top of the core :class:`genforge.models.gan.GAN` (``kind="tabular"``):

- **mode-specific normalisation**: each continuous column gets a variational Gaussian mixture
  (scikit-learn's ``BayesianGaussianMixture``, up to 10 modes, Dirichlet-process prior); a value is
  encoded as a one-hot of a mode sampled from its posterior plus a scalar ``(x - mu_k) / (4 sd_k)``
  (a tanh span and a softmax span in the generator's ``output_spans``);
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
  ``1 - 3 / steps``, about the last third of training). Late in training the live generator keeps
  moving: in one diagnostic run on German credit its TSTR/TRTR went between 0.70 and 0.87 over the
  last 2,000 of 3,000 steps. On inner validation splits of the training rows (see
  ``evaluate_loans``), 4,000 steps with the EMA gave quality 0.910 and TSTR/TRTR 0.980 +- 0.034
  against 0.898 and 0.958 +- 0.010 for the live generator (3 seeds each; the utility difference is
  within the noise, the quality one is not).

``sample(n, conditions={"purpose": "car (new)"})`` conditions the generator on the value and keeps
only rows that carry it (rejection), so conditions hold exactly. ``save`` / ``load`` go through
:func:`genforge.save` / :func:`genforge.load` with the column spec as JSON in ``extra`` (no pickle).

:class:`LoanPricer` is a probability-of-default model (scikit-learn L2 logistic regression or
gradient boosting on one-hot features) and a risk-based rate per loan:
``rate = PD x LGD + funding_cost + margin`` with the three parameters set by the user. The default,
logistic regression with ``C=0.1``, is the credit-scoring standard and had the best 5-fold
cross-validated AUROC on the real training part of German credit (0.781 on average over three
80% training parts, against 0.773 for ``C=1`` and 0.763 for gradient boosting).
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from genforge.errors import DataError, GenforgeError
from genforge.models.gan import GAN, GANConfig
from genforge.registry import register_model

FORMAT = "genforge.finance.LoanBookGAN"
TARGET = "creditability"
MAX_INT_LEVELS = 10


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
    """The core tabular GAN with CTGAN's generator penalty: cross-entropy of the conditioned column.

    The critic may have its own widths (``hidden_d``) and dropout (``dropout_d``), so its capacity
    can be set apart from the generator's; with the defaults it is the core PacGAN critic.
    """

    config_class = LoanGANConfig

    def __init__(self, config: LoanGANConfig) -> None:
        super().__init__(config)
        if config.hidden_d or config.dropout_d:
            from genforge.models.blocks import mlp

            critic = mlp(
                (config.in_features + config.cond_dim) * config.pac,
                config.hidden_d or config.hidden,
                1,
                act="leaky_relu",
                dropout=config.dropout_d,
            )
            self.discriminator.net = critic

    def generator_loss(self, batch) -> dict[str, torch.Tensor]:
        real, cond = self.split_batch(batch)
        z = self.noise(real.shape[0])
        raw = self.generator.net(torch.cat([z, cond], 1) if cond is not None else z)
        fake = self.generator.activate(raw)
        d_fake = self.critic(fake, cond).float()
        adv = F.softplus(-d_fake).mean() if self.config.loss == "ns" else -d_fake.mean()
        ce = torch.zeros((), device=raw.device)
        if cond is not None and self.config.cond_columns:
            offset = 0
            for start, size in self.config.cond_columns:
                part = cond[:, offset : offset + size]
                active = part.sum(1) > 0
                if bool(active.any()):
                    logits = raw[active, start : start + size].float()
                    ce = ce + F.cross_entropy(logits, part[active].argmax(1), reduction="sum")
                offset += size
            ce = ce / real.shape[0]
        return {"loss": adv + ce, "d_fake": d_fake.mean().detach(), "cond_ce": ce.detach()}


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
                    f"loan table: column {spec.name!r} has value {bad!r} not seen in training; "
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


class _ConditionalRows(Dataset):
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


# --------------------------------------------------------------------------------------------- estimator


class LoanBookGAN:
    """CTGAN-style synthetic loan books: ``fit(df)`` / ``sample(n, conditions)`` / ``save`` / ``load``.

    Parameters: ``discrete_columns`` (None = :func:`infer_discrete_columns`), ``steps``,
    ``batch_size`` (a multiple of ``pac``), ``lr``, ``hidden``, ``latent_dim``, ``pac``,
    ``n_critic``, ``max_modes`` (Gaussian-mixture modes per continuous column), ``seed``;
    ``target`` (outcome column that unconditioned samples are stratified by, when the table has it;
    None = CTGAN's sampling), ``target_share`` (how often training conditions on the target; None =
    as often as on any other categorical column, as CTGAN), ``ema_decay`` (``"auto"``, a number, or
    None for the live generator), ``lr_d`` (critic learning rate; None = ``lr``), ``hidden_d`` and
    ``dropout_d`` (critic widths and dropout; None / 0 = as the generator, no dropout).
    Learned: ``model_``, ``encoder_``, ``columns_``, ``history_``, ``frequencies_``, ``target_``.

    The defaults (4,000 steps, EMA ``"auto"``, stratified by ``creditability``) were chosen on an
    inner 80/20 split of each training part of German credit, never on the evaluation holdout.
    """

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
        device: str = "cpu",
        target: str | None = TARGET,
        target_share: float | None = None,
        ema_decay: float | str | None = "auto",
        lr_d: float | None = None,
        hidden_d: tuple[int, ...] | None = None,
        dropout_d: float = 0.0,
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

    def _validate(self, df: pd.DataFrame) -> list[str]:
        if not isinstance(df, pd.DataFrame):
            raise DataError(f"loan table: expected a pandas DataFrame, got {type(df).__name__}")
        if len(df) < 2 * self.pac:
            raise DataError(f"loan table: {len(df)} rows; expected at least {2 * self.pac}")
        if df.columns.duplicated().any():
            raise DataError(f"loan table: duplicate column names {list(df.columns[df.columns.duplicated()])}")
        missing = df.columns[df.isna().any()].tolist()
        if missing:
            raise DataError(
                f"loan table: column {missing[0]!r} has {int(df[missing[0]].isna().sum())} missing "
                "value(s); expected complete rows"
            )
        discrete = (
            list(self.discrete_columns) if self.discrete_columns is not None else infer_discrete_columns(df)
        )
        unknown = [c for c in discrete if c not in df.columns]
        if unknown:
            raise DataError(f"loan table: discrete column(s) {unknown} not in the table")
        for col in df.columns:
            if col not in discrete and not pd.api.types.is_numeric_dtype(df[col]):
                raise DataError(f"loan table: column {col!r} is neither numeric nor declared discrete")
        if not discrete:
            raise DataError("loan table: no categorical column; expected at least one for conditioning")
        if self.target is not None and self.target in df.columns and self.target not in discrete:
            raise DataError(
                f"loan table: target column {self.target!r} is continuous; expected a categorical outcome"
            )
        if self.target_share is not None and not 0.0 < self.target_share < 1.0:
            raise GenforgeError(
                f"LoanBookGAN target_share: expected a fraction in (0, 1), got {self.target_share}"
            )
        return discrete

    def fit(self, df: pd.DataFrame) -> LoanBookGAN:
        from genforge.training import TrainConfig, Trainer

        discrete = self._validate(df)
        df = df.reset_index(drop=True)
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
        data = _ConditionalRows(
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

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise GenforgeError("LoanBookGAN: not fitted; call fit(df) or LoanBookGAN.load(folder) first")

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
            return self._draw(n, conditions, fixed, rng, max_rounds)
        # stratified by the target: each outcome drawn conditioned on itself, in the real proportions
        spec = self.encoder_.specs[self.columns_.index(target)]
        counts = _apportion(n, np.asarray(self.frequencies_[target]))
        frames = []
        for k, (value, count) in enumerate(zip(spec.categories, counts, strict=True)):
            if count > 0:
                fixed = (dnames.index(target), k)
                frames.append(self._draw(int(count), {target: value}, fixed, rng, max_rounds))
        out = pd.concat(frames, ignore_index=True)
        return out.iloc[rng.permutation(len(out))].reset_index(drop=True)

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
                raw = self.model_.sample(m, cond=self._cond_batch(m, rng, fixed)).cpu().numpy()
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

    def save(self, directory: str | Path) -> Path:
        """Weights via :func:`genforge.save`; column spec, frequencies and parameters in ``extra``."""
        from genforge.checkpoints import save

        self._check_fitted()
        extra = {
            "format": FORMAT,
            "columns": self.columns_,
            "specs": [dataclasses.asdict(s) for s in self.encoder_.specs],
            "frequencies": self.frequencies_,
            "params": {
                "discrete_columns": [s.name for _, s in self.encoder_.discrete_specs()],
                "steps": self.steps,
                "batch_size": self.batch_size,
                "lr": self.lr,
                "hidden": list(self.hidden),
                "latent_dim": self.latent_dim,
                "pac": self.pac,
                "n_critic": self.n_critic,
                "max_modes": self.max_modes,
                "seed": self.seed,
                "target": self.target_,
                "target_share": self.target_share,
                "ema_decay": self.ema_decay,
                "lr_d": self.lr_d,
                "hidden_d": list(self.hidden_d) if self.hidden_d else None,
                "dropout_d": self.dropout_d,
            },
        }
        return save(self.model_, directory, extra=extra)

    @classmethod
    def load(cls, directory: str | Path) -> LoanBookGAN:
        """Rebuild a saved LoanBookGAN (safetensors weights + JSON; no pickle)."""
        from genforge.checkpoints import load, load_extra

        extra = load_extra(directory)
        if extra.get("format") != FORMAT:
            raise GenforgeError(
                f"{directory}: not a LoanBookGAN model folder (extra.format is "
                f"{extra.get('format')!r}); train one with `genforge finance synthesize-loans`"
            )
        params = dict(extra["params"])
        params["hidden"] = tuple(params["hidden"])
        params["target"] = params.get("target")  # folders saved before target sampling: none
        if params.get("hidden_d"):
            params["hidden_d"] = tuple(params["hidden_d"])
        est = cls(**params)
        est.target_ = params["target"]
        est.model_ = load(directory)
        est.encoder_ = TableEncoder([ColumnSpec(**s) for s in extra["specs"]])
        est.columns_ = list(extra["columns"])
        est.frequencies_ = dict(extra["frequencies"])
        est.history_ = []
        return est


# --------------------------------------------------------------------------------------------- pricing


class LoanPricer:
    """PD model + risk-based rate: ``rate = PD x LGD + funding_cost + margin`` (annual, decimal).

    Parameters: ``target`` (the default flag column), ``bad_value`` (its value for a default),
    ``model`` ("logistic" or "gbm"), ``lgd`` (loss given default, 0-1), ``funding_cost`` and
    ``margin`` (decimal rates), ``amount_column`` (for the expected loss; None = no EL column).
    Learned: ``pipeline_`` (scikit-learn), ``features_``, ``default_rate_``.
    """

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
            raise DataError(f"loan table: target column {self.target!r} missing; expected the default flag")
        y = (df[self.target].astype(str) == str(self.bad_value)).to_numpy(int)
        if y.min() == y.max():
            raise DataError(
                f"loan table: column {self.target!r} has no {'good' if y.min() else 'bad'} loans; "
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
        return self

    def predict_pd(self, df: pd.DataFrame) -> np.ndarray:
        """Probability of default per loan."""
        if not hasattr(self, "pipeline_"):
            raise GenforgeError("LoanPricer: not fitted; call fit(loans_with_outcomes) first")
        missing = [c for c in self.features_ if c not in df.columns]
        if missing:
            raise DataError(
                f"loan table: missing column(s) {missing}; expected the columns the PD model was fitted on"
            )
        x = df[self.features_].copy()
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
