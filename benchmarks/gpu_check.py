"""GPU check: one command, under five minutes on a lent GPU, that reports in JSON what the core
reaches on the device — and runs on CPU with ``--quick`` so that it cannot rot (a test runs it).

    python benchmarks/gpu_check.py --json gpu_check.json                     # on the GPU
    python benchmarks/gpu_check.py --device cpu --quick --json /tmp/g.json   # smoke test on CPU

Sections (each one is wrapped: a failure becomes ``{"ok": false, "error": ...}`` in the JSON and the
other sections still run):

- ``training``: each family trains with the recipe of ``genforge demo`` through
  ``genforge.training.Trainer`` (bf16 autocast on CUDA, the device and precision policy); the
  transformer at nanoGPT's shakespeare-char GPU config (6 layers, 6 heads, width 384, context 256,
  batch 64). A warm-up fit runs first, then the timed fit continues the same model. A bare loop
  (forward, backward, fused AdamW on device-resident batches) shows what the model itself reaches.
  MFU = 6 * N * tokens/s / dense bf16 peak of the device (N = parameters without the position
  embedding, as nanoGPT counts them; attention FLOPs left out, so a slight underestimate). Goal on
  an H100-class device: >= 45%.
- ``generation``: tokens/s of greedy KV-cache generation, ours (compiled decode step unless
  ``--quick``) vs Hugging Face ``GPT2LMHeadModel.generate`` with the same weights
  (``benchmarks/generate.py``), batch 1 / 8 / 64, and whether the greedy tokens are identical.
- ``ddim``: images/s of 50-step DDIM sampling, ours vs diffusers ``UNet2DModel`` + ``DDIMScheduler``
  with the same weights (``benchmarks/ddim.py``), batch 64.
- ``ddp``: a one-rank DistributedDataParallel step (NCCL on CUDA, Gloo on CPU) with an all-reduce.
- ``estimators``: every installed suite's estimators, each fitted on its ``example()`` (the suite
  contract's tiny configuration) on the device and probed once; a failing estimator is a failed row.

Every timing synchronises the device before reading the clock.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import add_json_arg, check_peer_versions, print_table, write_json  # noqa: E402

from genforge import recipes  # noqa: E402
from genforge.datasets import DataError, load_dataset, prepare  # noqa: E402
from genforge.devices import autocast, pick_device  # noqa: E402

# Dense bf16 tensor-core peaks (no sparsity), FLOP/s, by a substring of torch.cuda.get_device_name().
PEAK_BF16 = [
    ("H200", 989.4e12),
    ("H100 PCIe", 756.0e12),
    ("H100 NVL", 835.0e12),
    ("H100", 989.4e12),  # SXM / HBM3
    ("A100", 312.0e12),
    ("L40S", 362.05e12),
    ("L4", 121.0e12),
    ("A10", 125.0e12),
]


def peak_flops(device: torch.device) -> tuple[str, float | None]:
    """(device name, dense bf16 peak FLOP/s or None when unknown/CPU)."""
    if device.type != "cuda":
        return "cpu", None
    name = torch.cuda.get_device_name(device)
    for key, peak in PEAK_BF16:
        if key in name:
            return name, peak
    return name, None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def gpt_overrides(quick: bool) -> dict[str, Any]:
    """nanoGPT's shakespeare-char GPU config (dropout 0: we time the model, not regularisation)."""
    if quick:
        return {"n_layer": 2, "n_head": 2, "n_embd": 64, "block_size": 32}
    return {"n_layer": 6, "n_head": 6, "n_embd": 384, "block_size": 256, "dropout": 0.0}


def family_data(family: str, block_size: int) -> Any:
    if family != "transformer":
        return prepare(family, load_dataset("digits"))
    try:
        text = load_dataset("shakespeare")
        return prepare("transformer", text, block_size=block_size, stride=block_size // 2)
    except DataError:  # texts not installed: random characters still time the model honestly
        from genforge.datasets import encode_text

        rng = torch.Generator().manual_seed(0)
        chars = "".join(chr(32 + int(i)) for i in torch.randint(0, 65, (400_000,), generator=rng))
        return prepare("transformer", encode_text(chars, "random"), block_size=block_size, stride=block_size)


def train_family(family: str, device: torch.device, steps: int, warmup: int, batch: int,
                 quick: bool) -> dict[str, Any]:
    """Warm-up fit, then a timed fit of ``steps`` steps through the Trainer."""
    overrides = gpt_overrides(quick) if family == "transformer" else {}
    data = family_data(family, overrides.get("block_size", 64))
    if family == "transformer":
        data.meta["block_size"] = overrides["block_size"]
    torch.manual_seed(0)
    model = recipes.build_model(family, data.meta, overrides)
    settings = recipes.train_settings(family)
    settings.update(batch_size=batch, device=str(device), progress=False, val_every=None, ema_decay=None,
                    lr_schedule="constant", warmup_steps=0)
    train_only = recipes.Prepared(data.train, None, data.meta)
    recipes.train(model, train_only, **{**settings, "max_steps": warmup})
    _sync(device)
    result = recipes.train(model, train_only, **{**settings, "max_steps": steps})
    _sync(device)
    seconds = result.seconds
    n_critic = int(getattr(model.config, "n_critic", 1)) if family == "gan" else 1
    samples = steps * batch * n_critic
    row: dict[str, Any] = {"family": family, "loop": "Trainer", "params": _params(model), "batch": batch,
                           "steps": steps, "seconds": seconds, "step_ms": 1000 * seconds / steps,
                           "samples_per_s": samples / seconds,
                           "final_loss": _final_loss(result)}
    if family == "transformer":
        row["tokens_per_s"] = row["samples_per_s"] * overrides["block_size"]
        row["n_mfu"] = model.num_parameters()
        row["_model"], row["_data"] = model, data
    return row


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _final_loss(result: Any) -> float | None:
    last = result.history[-1] if result.history else {}
    for key in ("loss", "g_loss"):
        if key in last:
            return float(last[key])
    return None


def bare_gpt_loop(model: torch.nn.Module, data: Any, device: torch.device, steps: int, warmup: int,
                  batch: int) -> dict[str, Any]:
    """Forward + backward + AdamW on device-resident batches, bf16 autocast on CUDA."""
    x, y = (t.to(device) for t in data.train)
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=device.type == "cuda")
    gen = torch.Generator(device="cpu").manual_seed(0)

    def step() -> None:
        idx = torch.randint(0, len(x), (batch,), generator=gen).to(device)
        with autocast(device, "auto"):
            loss = model.training_loss((x[idx], y[idx]))["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    seconds = time.perf_counter() - start
    block = x.shape[1]
    return {"family": "transformer", "loop": "bare", "params": _params(model),
            "batch": batch, "steps": steps, "seconds": seconds, "step_ms": 1000 * seconds / steps,
            "samples_per_s": steps * batch / seconds,
            "tokens_per_s": steps * batch * block / seconds}


def training_section(device: torch.device, quick: bool, steps: int, batch: int | None) -> dict[str, Any]:
    """Every family through the Trainer, then the bare transformer loop; MFU for the transformer."""
    name, peak = peak_flops(device)
    warmup = 2 if quick else 30
    rows = []
    for family in recipes.FAMILIES:
        b = batch or (8 if quick else (64 if family == "transformer" else 256))
        print(f"[gpu_check] {family} on {name}: {warmup} warm-up + {steps} timed steps, batch {b}",
              file=sys.stderr)
        rows.append(train_family(family, device, steps, warmup, b, quick))
    gpt = next(r for r in rows if r["family"] == "transformer")
    rows.append(bare_gpt_loop(gpt.pop("_model"), gpt.pop("_data"), device, steps, warmup, gpt["batch"]))
    rows[-1]["n_mfu"] = gpt["n_mfu"]
    for row in rows:
        n = row.pop("n_mfu", None)
        if "tokens_per_s" in row and n is not None:
            row["model_tflops"] = 6 * n * row["tokens_per_s"] / 1e12
            row["mfu"] = 6 * n * row["tokens_per_s"] / peak if peak else None
    print_table(rows, ["family", "loop", "params", "batch", "steps", "step_ms", "samples_per_s",
                       "tokens_per_s", "model_tflops", "mfu", "final_loss"])
    return {"rows": rows, "transformer_mfu": rows[-1].get("mfu"), "transformer_mfu_trainer": gpt.get("mfu"),
            "transformer_step_ms": rows[-1]["step_ms"], "mfu_goal": 0.45}


def _timed(fn: Callable[[], Any], device: torch.device, repeats: int) -> float:
    """Median seconds of ``fn`` over ``repeats`` calls after one warm-up, device synchronised."""
    fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def generation_section(device: torch.device, quick: bool) -> dict[str, Any]:
    """Greedy KV-cache generation, ours vs HF ``generate``, same weights, batch 1 / 8 / 64."""
    import transformers
    from generate import to_hf

    from genforge.models.transformer import GPT, GPTConfig

    transformers.logging.set_verbosity_error()
    prompt_len, new = (4, 8) if quick else (16, 256)
    size = dict(n_layer=2, n_head=2, n_embd=64) if quick else dict(n_layer=6, n_head=6, n_embd=384)
    config = GPTConfig(vocab_size=65, block_size=max(256, prompt_len + new), **size)
    torch.manual_seed(0)
    ours = GPT(config).eval()
    hf = to_hf(ours).to(device)
    ours.to(device)
    batches = (1, 8, 64)
    compiled = False
    if not quick:  # on the GPU the compiled step is what we ship; on a CPU smoke test it is too slow
        compiled = ours.compile_decode(batch_sizes=batches)
    rows = []
    for batch in batches:
        prompt = torch.randint(0, 65, (batch, prompt_len), generator=torch.Generator().manual_seed(batch))
        prompt = prompt.to(device)

        def run_hf(prompt: torch.Tensor = prompt) -> torch.Tensor:
            with torch.inference_mode():
                return hf.generate(prompt, attention_mask=torch.ones_like(prompt), do_sample=False,
                                   max_new_tokens=new, min_new_tokens=new, use_cache=True)

        def run_ours(prompt: torch.Tensor = prompt) -> torch.Tensor:
            return ours.generate(prompt, new, temperature=0.0)

        same = bool(torch.equal(run_ours(), run_hf()))
        repeats = 1 if quick else 3
        t_ours, t_hf = _timed(run_ours, device, repeats), _timed(run_hf, device, repeats)
        rows.append({"batch": batch, "ours_tokens_per_s": batch * new / t_ours,
                     "hf_tokens_per_s": batch * new / t_hf, "ratio_vs_hf": t_hf / t_ours,
                     "tokens_identical": same})
    print_table(rows, ["batch", "ours_tokens_per_s", "hf_tokens_per_s", "ratio_vs_hf", "tokens_identical"])
    return {"rows": rows, "compiled_decode": compiled, "prompt_tokens": prompt_len, "new_tokens": new,
            "config": size}


def ddim_section(device: torch.device, quick: bool) -> dict[str, Any]:
    """50-step DDIM at batch 64, ours vs diffusers, identical UNet weights; images/s."""
    from ddim import build_pair, diffusers_sample

    image, batch, steps = (8, 2, 2) if quick else (32, 64, 50)
    ours, theirs, scheduler = build_pair(image, 3)
    ours.to(device)
    theirs.to(device)
    shape = ours.sample_shape
    gen = None if device.type != "cpu" else torch.Generator().manual_seed(0)

    def run_ours() -> torch.Tensor:
        return ours.sample(batch, steps=steps, generator=gen)

    def run_theirs() -> torch.Tensor:
        return diffusers_sample(theirs, scheduler, batch, shape, steps, seed=0, device=device)

    repeats = 1 if quick else 3
    t_ours, t_theirs = _timed(run_ours, device, repeats), _timed(run_theirs, device, repeats)
    row = {"batch": batch, "steps": steps, "image": image, "ours_images_per_s": batch / t_ours,
           "diffusers_images_per_s": batch / t_theirs, "ratio_vs_diffusers": t_theirs / t_ours}
    print_table([row], list(row))
    return row


def ddp_section(device: torch.device) -> dict[str, Any]:
    """One DDP step in a one-rank process group (NCCL on CUDA, Gloo on CPU) and an all-reduce."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    backend = "nccl" if device.type == "cuda" else "gloo"
    with tempfile.TemporaryDirectory() as tmp:
        dist.init_process_group(backend, init_method=f"file://{Path(tmp) / 'rendezvous'}", rank=0,
                                world_size=1)
        try:
            model = torch.nn.Linear(16, 4).to(device)
            ddp = DistributedDataParallel(model, device_ids=[device.index or 0] if device.type == "cuda"
                                          else None)
            opt = torch.optim.SGD(ddp.parameters(), lr=0.1)
            loss = ddp(torch.randn(8, 16, device=device)).square().mean()
            loss.backward()
            opt.step()
            total = torch.ones(1, device=device)
            dist.all_reduce(total)
            _sync(device)
            ok = bool(total.item() == 1.0) and bool(torch.isfinite(loss).item())
        finally:
            dist.destroy_process_group()
    return {"backend": backend, "world_size": 1, "loss": float(loss.item()), "ok": ok}


# ------------------------------------------------------------------------------ suite estimators
# Every estimator of every installed suite (``genforge.suite``), on its own ``example()``: the tiny
# configuration on embedded data that the suite contract test also fits, here on ``device``.


def estimator_examples() -> list[tuple[str, Any]]:
    """(``suite.Class``, class) for every estimator that the installed suites declare."""
    from genforge.suite import installed_suites, resolve

    return [(f"{name}.{path.split(':')[-1]}", resolve(path))
            for name, suite in installed_suites().items() for path in suite.estimators]


def fit_and_probe(cls: Any, device: str) -> str:
    """Fit ``cls.example()`` on ``device`` and run its probe (a predict, score or sample)."""
    example = cls.example()
    est = cls(**{**example.params, "device": device})
    est.fit(*example.fit_args, **example.fit_kwargs)
    out = example.probe(est)
    shape = getattr(out, "shape", None)
    return f"probe {tuple(shape)}" if shape is not None else f"probe {type(out).__name__}"


def estimators_section(device: torch.device) -> dict[str, Any]:
    """One row per estimator: ok, seconds, what it produced, or the error."""
    rows = []
    for name, cls in estimator_examples():
        start = time.perf_counter()
        try:
            detail = fit_and_probe(cls, str(device))
            _sync(device)
            rows.append({"estimator": name, "ok": True, "seconds": time.perf_counter() - start,
                         "result": detail})
        except Exception as exc:  # noqa: BLE001 - one failing estimator is a row, not a crash
            rows.append({"estimator": name, "ok": False, "seconds": time.perf_counter() - start,
                         "error": f"{type(exc).__name__}: {exc}"})
    print_table(rows, ["estimator", "ok", "seconds", "result", "error"])
    return {"rows": rows, "all_ok": all(r["ok"] for r in rows)}


SECTIONS = ("training", "generation", "ddim", "ddp", "estimators")


def _run_section(name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    print(f"\n== {name}", flush=True)
    start = time.perf_counter()
    try:
        result = {"ok": True, **fn()}
    except Exception as exc:  # noqa: BLE001 - report the section as failed, run the others
        traceback.print_exc()
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    result["seconds"] = time.perf_counter() - start
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cuda, cpu")
    parser.add_argument("--quick", action="store_true", help="tiny sizes and steps (a CPU smoke test)")
    parser.add_argument("--steps", type=int, default=None,
                        help="timed training steps per family (300; quick: 5)")
    parser.add_argument("--batch", type=int, default=None, help="training batch (256, GPT 64; quick: 8)")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS),
                        help="which sections to run (default: all)")
    add_json_arg(parser)
    args = parser.parse_args(argv)

    device = pick_device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(1)
    check_peer_versions()
    name, peak = peak_flops(device)
    steps = args.steps or (5 if args.quick else 300)
    precision = "bf16 autocast" if device.type == "cuda" else "fp32"
    peak_text = f"; peak bf16 {peak / 1e12:.0f} TFLOP/s" if peak else ""
    print(f"device: {name} ({device}); precision: {precision}{peak_text}")
    runners: dict[str, Callable[[], dict[str, Any]]] = {
        "training": lambda: training_section(device, args.quick, steps, args.batch),
        "generation": lambda: generation_section(device, args.quick),
        "ddim": lambda: ddim_section(device, args.quick),
        "ddp": lambda: ddp_section(device),
        "estimators": lambda: estimators_section(device),
    }
    start = time.perf_counter()
    sections = {name_: _run_section(name_, runners[name_]) for name_ in args.sections}
    result = {"device": name, "torch_device": str(device), "precision": precision, "peak_bf16_flops": peak,
              "quick": args.quick, "seconds": time.perf_counter() - start, "sections": sections,
              "ok": all(sec["ok"] for sec in sections.values())}
    training = sections.get("training", {})
    result["transformer_mfu"] = training.get("transformer_mfu")
    print(f"\ngpu_check: {'all sections ok' if result['ok'] else 'SOME SECTIONS FAILED'} "
          f"in {result['seconds']:.0f} s")
    write_json(args.json, result)
    return result


if __name__ == "__main__":
    ok = main()["ok"]
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0 if ok else 1)  # no lingering NCCL / inductor worker threads keep a finished check alive
