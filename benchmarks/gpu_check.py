"""GPU check: a few hundred training steps of each family through the real Trainer; samples/s per
family and, for the transformer, model FLOPs utilisation (MFU) in bf16.

Meant for a lent GPU (one short run), and runnable on CPU with ``--quick`` to check the script:

    python benchmarks/gpu_check.py --json gpu_check.json                 # on the GPU
    python benchmarks/gpu_check.py --device cpu --quick --json /tmp/g.json   # smoke test on CPU

What is measured: each family trains with the same recipe as ``genforge demo`` (digits for VAE, GAN
and diffusion; the Shakespeare play for the transformer, at nanoGPT's shakespeare-char size:
6 layers, 6 heads, width 384, context 256) through ``genforge.training.Trainer`` with its device and
precision policy (bf16 autocast on CUDA). A short warm-up fit runs first, then the timed fit
continues the same model; samples/s = steps * batch / seconds of the timed fit.

MFU = 6 * N * tokens/s / peak bf16 dense FLOP/s of the device (N = parameters without the position
embedding, as nanoGPT counts them; attention FLOPs are left out, so this is a slight underestimate).
Two transformer rows: through the Trainer, and a bare loop (forward, backward, AdamW step on
batches already on the device) that shows what the model itself reaches.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import add_json_arg, print_table, write_json  # noqa: E402

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
                           "steps": steps, "seconds": seconds, "samples_per_s": samples / seconds,
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
            "batch": batch, "steps": steps, "seconds": seconds, "samples_per_s": steps * batch / seconds,
            "tokens_per_s": steps * batch * block / seconds}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cuda, cpu")
    parser.add_argument("--quick", action="store_true", help="tiny sizes and steps (a CPU smoke test)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per family (300; quick: 5)")
    parser.add_argument("--batch", type=int, default=None, help="batch size (256, GPT 64; quick: 8)")
    add_json_arg(parser)
    args = parser.parse_args(argv)

    device = pick_device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(1)
    name, peak = peak_flops(device)
    steps = args.steps or (5 if args.quick else 300)
    warmup = 2 if args.quick else 30
    rows = []
    for family in recipes.FAMILIES:
        batch = args.batch or (8 if args.quick else (64 if family == "transformer" else 256))
        print(f"[gpu_check] {family} on {name}: {warmup} warm-up + {steps} timed steps, batch {batch}",
              file=sys.stderr)
        rows.append(train_family(family, device, steps, warmup, batch, args.quick))
    gpt = rows[-1]
    rows.append(bare_gpt_loop(gpt.pop("_model"), gpt.pop("_data"), device, steps, warmup, gpt["batch"]))
    rows[-1]["n_mfu"] = gpt["n_mfu"]
    for row in rows:
        n = row.pop("n_mfu", None)
        if "tokens_per_s" in row and n is not None:
            row["model_tflops"] = 6 * n * row["tokens_per_s"] / 1e12
            row["mfu"] = 6 * n * row["tokens_per_s"] / peak if peak else None

    precision = "bf16 autocast" if device.type == "cuda" else "fp32"
    peak_text = f"; peak bf16 {peak / 1e12:.0f} TFLOP/s" if peak else ""
    print(f"device: {name} ({device}); precision: {precision}{peak_text}")
    print_table(rows, ["family", "loop", "params", "batch", "steps", "seconds", "samples_per_s",
                       "tokens_per_s", "model_tflops", "mfu", "final_loss"])
    result = {"device": name, "torch_device": str(device), "precision": precision, "peak_bf16_flops": peak,
              "quick": args.quick, "rows": rows,
              "transformer_mfu": rows[-1].get("mfu"), "transformer_mfu_trainer": gpt.get("mfu")}
    if args.json:
        write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
