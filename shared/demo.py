"""``genforge demo``: train small models of all four families on real embedded data and measure them.

The same recipes (which model, of what size, with which training settings, for which data) serve
``genforge train`` and ``genforge sample``, so a model trained from the CLI samples the same way
as the demo's.

What the demo measures, and against what:
- digits (scikit-learn, 8x8): a conditional VAE, a conditional GAN and a class-conditional
  diffusion model (classifier-free guidance) each draw samples of every class; a scikit-learn
  classifier trained on real digits names their class. Score: accuracy of the intended class,
  beside chance (10%) and the classifier's accuracy on real held-out digits.
- Shakespeare (one play, characters): a small GPT's validation loss in nats per character beside
  the unigram entropy of the text (the loss of a model that ignores context).
- every installed suite: its ``run_demo(out_dir)`` (entry point group ``genforge.suites``).
"""

from __future__ import annotations

import importlib
import math
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genforge.datasets import GenData, Prepared, load_dataset, prepare, split_tokens, unigram_entropy
from genforge.errors import GenforgeError
from genforge.io import atomic_path, write_json_atomic, write_table_atomic, write_text_atomic

FAMILIES = ("vae", "gan", "diffusion", "transformer")
REGISTRY = {  # family -> (registry name, module that registers it)
    "vae": ("vae", "genforge.models.vae"),
    "gan": ("gan", "genforge.models.gan"),
    "diffusion": ("diffusion", "genforge.models.diffusion"),
    "transformer": ("gpt", "genforge.models.transformer"),
}
RESULTS_ENV = "GENFORGE_RESULTS"


# ============================================================================== recipes
def model_config(family: str, meta: dict[str, Any]) -> dict[str, Any]:
    """A small architecture for ``family`` that fits the prepared data described by ``meta``."""
    k = int(meta.get("num_classes", 0))
    if family == "transformer":
        vocab = len(meta["data"]["vocab"])
        return {"vocab_size": vocab, "block_size": int(meta["block_size"]), "n_layer": 2, "n_head": 4,
                "n_embd": 128, "dropout": 0.0}
    shape = [int(s) for s in meta["shape"]]
    features = int(np.prod(shape))
    if family == "vae":
        return {"kind": "mlp", "in_features": features, "latent_dim": 8, "hidden": [256, 128],
                "likelihood": "bernoulli" if meta["encoding"] == "unit" else "gaussian", "cond_dim": k}
    if family == "gan":
        spans = [[features, "tanh"]] if meta["encoding"] == "pm1" else []
        return {"kind": "tabular", "loss": "ns", "latent_dim": 32, "cond_dim": k, "hidden": [256, 256],
                "n_critic": 1, "in_features": features, "output_spans": spans}
    if family == "diffusion":
        return {"dims": 2, "channels": shape[0], "image_size": shape[1:], "base_channels": 16,
                "channel_mults": [1, 2], "layers_per_block": 1, "attention_levels": [],
                "attention_head_dim": 32, "norm_groups": 8, "num_classes": k,
                "cfg_dropout": 0.1 if k else 0.0, "schedule": "cosine", "prediction": "epsilon",
                "timesteps": 1000, "clip_sample": True}
    raise GenforgeError(f"family {family!r}: expected one of {', '.join(FAMILIES)}")


def train_settings(family: str) -> dict[str, Any]:
    """TrainConfig fields that suit each family's recipe (the CLI's options override them)."""
    base: dict[str, Any] = {"batch_size": 64, "lr": 2e-3, "val_every": 200, "grad_clip": 1.0}
    if family == "vae":
        base.update(batch_size=128, lr=2e-3, max_steps=1500, val_every=250)
    elif family == "gan":
        base.update(batch_size=128, lr=2e-4, betas=(0.5, 0.999), max_steps=2000, val_every=None)
    elif family == "diffusion":
        base.update(batch_size=64, lr=2e-3, max_steps=1600, ema_decay=0.995, val_every=None)
    elif family == "transformer":
        base.update(batch_size=32, lr=2e-3, max_steps=1000, val_every=250, lr_schedule="cosine",
                    warmup_steps=50)
    return base


def build_model(family: str, meta: dict[str, Any],
                overrides: dict[str, Any] | None = None) -> torch.nn.Module:
    """Instantiate the recipe's model through the registry (so checkpoints rebuild the same way)."""
    from genforge.registry import build_model as registry_build

    name, module = REGISTRY[family]
    importlib.import_module(module)
    config = model_config(family, meta)
    config.update(overrides or {})
    return registry_build(name, config)


def train(model: torch.nn.Module, prepared: Prepared, **settings: Any) -> Any:
    """Fit ``model`` with the shared Trainer; returns its TrainResult."""
    from genforge.training import TrainConfig, Trainer

    return Trainer(TrainConfig(**settings)).fit(model, prepared.train, prepared.val)


# ============================================================================== sampling
@dataclass
class Samples:
    """What a model generated, decoded to data space: one of images / table / texts is set."""

    kind: str
    images: torch.Tensor | None = None  # [n, C, H, W] in [0, 1]
    labels: torch.Tensor | None = None  # intended classes of conditional samples
    table: np.ndarray | None = None
    texts: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)  # table column names


def _decode(x: torch.Tensor, meta: dict[str, Any]) -> torch.Tensor | np.ndarray:
    data = meta["data"]
    if meta["encoding"] == "standard":
        return x.double().numpy() * np.asarray(data["std"]) + np.asarray(data["mean"])
    x = x.float()
    if meta["encoding"] == "pm1":
        x = (x + 1) / 2
    return x.clamp(0, 1).reshape(x.shape[0], *meta["shape"])


def class_labels(n: int, num_classes: int) -> torch.Tensor:
    """0, 1, ..., K-1, 0, 1, ...: every class drawn equally often."""
    return torch.arange(n) % num_classes


@torch.no_grad()
def draw_samples(model: torch.nn.Module, meta: dict[str, Any], n: int, *, steps: int = 50,
                 guidance_scale: float = 2.0, prompt: str | None = None, max_new_tokens: int = 300,
                 temperature: float = 0.8, top_k: int | None = None, top_p: float | None = None,
                 seed: int = 0) -> Samples:
    """Generate ``n`` samples from a trained recipe model and decode them to data space."""
    if n < 1:
        raise GenforgeError(f"-n = {n}; expected at least 1 sample")
    torch.manual_seed(seed)
    model.eval()
    family = meta["family"]
    if family == "transformer":
        vocab = meta["data"]["vocab"]
        text = prompt if prompt else "\n"
        unknown = sorted(set(text) - set(vocab))
        if unknown:
            raise GenforgeError(f"--prompt: characters {unknown[:5]!r} are not in the model's vocabulary")
        index = {ch: i for i, ch in enumerate(vocab)}
        block = int(model.config.block_size)
        idx = torch.tensor([[index[ch] for ch in text[-block:]]] * n, dtype=torch.long)
        gen = torch.Generator().manual_seed(seed)
        out = model.generate(idx, max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                             generator=gen)
        start = idx.shape[1]
        return Samples("text", texts=[text + "".join(vocab[int(i)] for i in row[start:]) for row in out])

    labels = class_labels(n, int(meta["num_classes"])) if meta.get("conditional") else None
    if family == "diffusion":
        x = model.sample(n, steps=steps, guidance_scale=guidance_scale if labels is not None else 1.0,
                         cond=labels)
    else:
        cond = None
        if labels is not None:
            cond = torch.nn.functional.one_hot(labels, int(meta["num_classes"])).float()
        x = model.sample(n, cond=cond)
    decoded = _decode(x, meta)
    if isinstance(decoded, np.ndarray):
        names = meta["data"].get("columns") or [f"x{i}" for i in range(decoded.shape[1])]
        return Samples("table", table=decoded, columns=list(names))
    return Samples("image", images=decoded, labels=labels)


def image_grid(images: torch.Tensor, ncol: int, scale: int = 4, pad: int = 1) -> Any:
    """A PIL image of ``images`` ([n, C, H, W] in [0, 1]) tiled ``ncol`` per row, upscaled ``scale``x."""
    from PIL import Image

    n, c, h, w = images.shape
    nrow = math.ceil(n / ncol)
    canvas = np.ones((nrow * (h + pad) + pad, ncol * (w + pad) + pad, c), dtype=np.float32)
    for i in range(n):
        r, col = divmod(i, ncol)
        y0, x0 = pad + r * (h + pad), pad + col * (w + pad)
        canvas[y0:y0 + h, x0:x0 + w] = images[i].permute(1, 2, 0).numpy()
    pixels = (canvas * 255).round().astype(np.uint8)
    img = Image.fromarray(pixels[..., 0] if c == 1 else pixels[..., :3])
    return img.resize((img.width * scale, img.height * scale), Image.NEAREST)


def save_samples(samples: Samples, path: Path, ncol: int = 10) -> Path:
    """Write samples atomically: images as a PNG grid, tables as CSV, texts as .txt."""
    if samples.kind == "image":
        assert samples.images is not None
        path = path.with_suffix(".png")
        with atomic_path(path) as tmp:
            image_grid(samples.images, ncol=min(ncol, len(samples.images))).save(tmp, format="PNG")
        return path
    if samples.kind == "table":
        import pandas as pd

        path = path.with_suffix(".csv")
        assert samples.table is not None
        return write_table_atomic(path, pd.DataFrame(samples.table, columns=samples.columns))
    path = path.with_suffix(".txt")
    sep = "\n\n" + "-" * 40 + "\n\n"
    return write_text_atomic(path, sep.join(samples.texts) + "\n")


# ============================================================================== measuring
def digit_classifier(images: torch.Tensor, labels: torch.Tensor) -> Any:
    """An SVM trained on real digits ([n, 1, 8, 8] in [0, 1]): the judge of generated digits."""
    from sklearn.svm import SVC

    return SVC(gamma="scale", C=10.0).fit(images.flatten(1).numpy(), labels.numpy())


def class_accuracy(classifier: Any, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of ``images`` that ``classifier`` assigns to their intended ``labels``."""
    predicted = classifier.predict(images.flatten(1).numpy())
    return float((predicted == labels.numpy()).mean())


def within_class_spread(images: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean per-pixel standard deviation within each class, averaged over classes.

    A generator that returns one prototype per class scores 0 however accurate it is; real digits
    set the scale, so ``spread(samples) / spread(real)`` near 1 means real-like variety.
    """
    groups = [images[labels == c].flatten(1) for c in labels.unique()]
    spreads = [g.std(0).mean() for g in groups if len(g) > 1]
    return float(torch.stack(spreads).mean()) if spreads else 0.0


@torch.no_grad()
def text_val_loss(model: torch.nn.Module, val: tuple[torch.Tensor, ...], batch: int = 64) -> float:
    """Mean next-character cross-entropy (nats) over the validation windows."""
    model.eval()
    total, count = 0.0, 0
    x, y = val
    for i in range(0, len(x), batch):
        loss = model.training_loss((x[i:i + batch], y[i:i + batch]))["loss"]
        total += float(loss) * y[i:i + batch].numel()
        count += y[i:i + batch].numel()
    return total / count


def _subset(data: GenData, idx: torch.Tensor) -> GenData:
    y = data.y[idx] if data.y is not None else None
    return GenData(data.name, data.kind, data.x[idx], y, data.num_classes, dict(data.meta))


# ============================================================================== the demo
QUICK_STEPS = {"vae": 40, "gan": 40, "diffusion": 30, "transformer": 40}


def default_out_dir() -> Path:
    """``$GENFORGE_RESULTS`` (or ./genforge-results) / demo-<timestamp>."""
    root = Path(os.environ.get(RESULTS_ENV, "genforge-results"))
    return root / f"demo-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def installed_suites() -> dict[str, Any]:
    """Installed suites (name -> ``genforge.suite.Suite``), sorted by name."""
    from genforge.suite import installed_suites as found

    return found()


def _run_family(family: str, out: Path, digits_train: GenData, judge: Any, real_acc: float,
                real_spread: float, quick: bool, seed: int) -> dict[str, Any]:
    data = load_dataset("shakespeare") if family == "transformer" else digits_train
    prepared = prepare(family, data, seed=seed)
    torch.manual_seed(seed)
    model = build_model(family, prepared.meta)
    settings = train_settings(family)
    settings.update(seed=seed, progress=True, device="cpu")
    if quick:
        settings.update(max_steps=QUICK_STEPS[family], val_every=None)
    start, cpu_start = time.perf_counter(), time.process_time()
    result = train(model, prepared, **settings)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    import genforge

    genforge.save(model, out / family / "model", extra=prepared.meta)
    row: dict[str, Any] = {"status": "ok", "dataset": data.meta["name"], "steps": int(result.steps),
                           "train_seconds": round(seconds, 1), "train_cpu_seconds": round(cpu_seconds, 1),
                           "parameters": sum(p.numel() for p in model.parameters())}
    if family == "transformer":
        samples = draw_samples(model, prepared.meta, 2, prompt="HAMLET:\n",
                               max_new_tokens=60 if quick else 400, seed=seed)
        val = prepared.val
        assert val is not None
        loss = text_val_loss(model, val)
        entropy = unigram_entropy(split_tokens(data.x)[0])
        row.update(metric="validation loss (nats/char)", val_loss=round(loss, 4),
                   unigram_entropy=round(entropy, 4), value=round(loss, 4), baseline=round(entropy, 4),
                   better="lower")
    else:
        n = 50 if quick else 200
        samples = draw_samples(model, prepared.meta, n, steps=8 if quick else 50, seed=seed)
        assert samples.images is not None and samples.labels is not None
        acc = class_accuracy(judge, samples.images, samples.labels)
        spread = within_class_spread(samples.images, samples.labels) / real_spread
        row.update(metric="intended-class accuracy of samples", sample_accuracy=round(acc, 4),
                   chance=0.1, real_accuracy=round(real_acc, 4), value=round(acc, 4), baseline=0.1,
                   better="higher", n_samples=n, diversity=round(spread, 3))
        if samples.images is not None and len(samples.images) > 100:  # grid: 10 rows x 10 classes
            samples = Samples("image", images=samples.images[:100], labels=samples.labels[:100])
    path = save_samples(samples, out / family / "samples")
    row["samples"] = str(path.relative_to(out))
    return row


def _run_suite(suite: Any, out: Path, quick: bool) -> dict[str, Any]:
    start = time.perf_counter()
    metrics = suite.run_demo(out / suite.name, quick=quick)
    return {"status": "ok", "seconds": round(time.perf_counter() - start, 1), "metrics": metrics}


def run(out: Path | None = None, quick: bool = False, families: tuple[str, ...] = FAMILIES,
        suites: list[str] | None = None, seed: int = 0,
        echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the demo into ``out``; returns the metrics (also written to metrics.json and report.md).

    ``suites``: names of installed suites to run (None = all, [] = none). A failure in one family
    or suite is recorded and the rest continue; ``metrics["failures"]`` lists what failed.
    """
    out = Path(out) if out is not None else default_out_dir()
    out.mkdir(parents=True, exist_ok=True)
    # The demo's models are tiny: a second thread only adds synchronisation, and where anything else
    # runs it spin-waits (measured here: diffusion 195 s with 2 threads, 60 s with 1).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run(out, quick, families, suites, seed, echo)
    finally:
        torch.set_num_threads(threads)


def _run(out: Path, quick: bool, families: tuple[str, ...], suites: list[str] | None, seed: int,
         echo: Callable[[str], None]) -> dict[str, Any]:
    from sklearn.model_selection import train_test_split

    import genforge

    begin = time.perf_counter()
    metrics: dict[str, Any] = {"genforge_version": genforge.__version__, "created": datetime.now().isoformat(
        timespec="seconds"), "quick": quick, "torch_threads": torch.get_num_threads(), "families": {},
        "suites": {}, "failures": []}

    digits = load_dataset("digits")
    train_idx, test_idx = train_test_split(np.arange(len(digits)), test_size=0.25, random_state=seed,
                                           stratify=digits.y.numpy())
    digits_train = _subset(digits, torch.as_tensor(train_idx))
    digits_test = _subset(digits, torch.as_tensor(test_idx))
    assert digits_train.y is not None and digits_test.y is not None
    judge = digit_classifier(digits_train.x, digits_train.y)
    real_acc = class_accuracy(judge, digits_test.x, digits_test.y)
    real_spread = within_class_spread(digits_train.x, digits_train.y)
    metrics["digit_classifier"] = {"model": "SVC(C=10)", "trained_on": len(digits_train),
                                   "real_heldout_accuracy": round(real_acc, 4), "heldout": len(digits_test)}

    for family in families:
        echo(f"[demo] {family}: training on {'shakespeare' if family == 'transformer' else 'digits'} ...")
        try:
            row = _run_family(family, out, digits_train, judge, real_acc, real_spread, quick, seed)
        except Exception as exc:  # one family failing must not hide the others' results
            row = {"status": "failed", "error": f"{type(exc).__name__}: {exc}",
                   "traceback": traceback.format_exc(limit=5)}
            metrics["failures"].append(f"family {family}: {type(exc).__name__}: {exc}")
        metrics["families"][family] = row
        echo(f"[demo] {family}: {_summary(row)}")

    for name, suite in installed_suites().items():
        if suites is not None and name not in suites:
            continue
        echo(f"[demo] suite {name} ...")
        try:
            row = _run_suite(suite, out, quick)
        except Exception as exc:
            row = {"status": "failed", "error": f"{type(exc).__name__}: {exc}",
                   "traceback": traceback.format_exc(limit=5)}
            metrics["failures"].append(f"suite {name}: {type(exc).__name__}: {exc}")
        metrics["suites"][name] = row
        echo(f"[demo] suite {name}: {row['status']}")

    metrics["seconds_total"] = round(time.perf_counter() - begin, 1)
    write_json_atomic(out / "metrics.json", metrics)
    write_text_atomic(out / "report.md", report_markdown(metrics))
    return metrics


def _summary(row: dict[str, Any]) -> str:
    if row.get("status") != "ok":
        return f"FAILED ({row.get('error')})"
    if "val_loss" in row:
        return (f"validation loss {row['val_loss']:.3f} nats/char vs unigram entropy "
                f"{row['unigram_entropy']:.3f} ({row['train_seconds']} s)")
    return (f"{100 * row['sample_accuracy']:.0f}% of samples classified as the intended digit "
            f"(chance 10%, real digits {100 * row['real_accuracy']:.0f}%), within-class diversity "
            f"{row['diversity']:.2f} x real ({row['train_seconds']} s)")


def report_markdown(metrics: dict[str, Any]) -> str:
    """A short human-readable report of a demo run."""
    lines = [f"# genforge demo ({metrics['created']})", ""]
    if metrics.get("quick"):
        lines += ["*Quick mode: tiny step counts; figures show the pipeline works, not model quality.*", ""]
    judge = metrics.get("digit_classifier", {})
    lines += ["Digits: scikit-learn's 8x8 handwritten digits; samples of each class are judged by an SVM "
              f"trained on real digits (accuracy on {judge.get('heldout', '?')} real held-out digits: "
              f"{judge.get('real_heldout_accuracy', float('nan')):.3f}); diversity is the within-class "
              "pixel spread of the samples relative to real digits (0 = one prototype per class). "
              "Text: one Shakespeare play, characters; the GPT's validation loss is compared with the "
              "unigram entropy of the text.", "",
              "| family | data | metric | value | baseline | diversity | steps | train s | samples |",
              "|---|---|---|---|---|---|---|---|---|"]
    for family, row in metrics["families"].items():
        if row.get("status") != "ok":
            lines.append(f"| {family} | | FAILED: {row.get('error')} | | | | | | |")
            continue
        baseline = "unigram entropy" if "val_loss" in row else "chance"
        lines.append(f"| {family} | {row['dataset']} | {row['metric']} | {row['value']:.3f} | "
                     f"{baseline} {row['baseline']:.3f} | {row.get('diversity', '')} | {row['steps']} | "
                     f"{row['train_seconds']} | "
                     f"[{row['samples']}]({row['samples']}) |")
    if metrics["suites"]:
        lines += ["", "## Suites", "", "| suite | status | metrics |", "|---|---|---|"]
        for name, row in metrics["suites"].items():
            detail = row.get("metrics") or row.get("error") or row.get("reason", "")
            lines.append(f"| {name} | {row['status']} | {_flat(detail)} |")
    lines += ["", f"Total time: {metrics.get('seconds_total', '?')} s."]
    return "\n".join(lines) + "\n"


def _flat(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_fmt(v)}" for k, v in value.items() if not isinstance(v, dict | list))
    return str(value).replace("|", "/").replace("\n", " ")


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
