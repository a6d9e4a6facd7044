"""``genforge demo``: train small models of all four families on real embedded data and measure them.

The models, training settings and sampling come from :mod:`genforge.recipes`, which ``genforge
train`` and ``genforge sample`` use too; this module measures what the recipes produce.

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

import os
import time
import traceback
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genforge.datasets import GenData, load_dataset, prepare, split_tokens, unigram_entropy
from genforge.io import write_json_atomic, write_text_atomic
from genforge.recipes import FAMILIES, Samples, build_model, draw_samples, save_samples, train, train_settings

RESULTS_ENV = "GENFORGE_RESULTS"


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
