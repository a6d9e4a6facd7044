"""DDIM sampling speed: genforge's Diffusion vs diffusers' UNet2DModel + DDIMScheduler, same network.

Both sides run the identical architecture (32x32x3, block_out_channels (64, 128, 128), two ResNet blocks
per level, self-attention at the 16x16 level and in the mid block, attention head size 32, GroupNorm 32),
with diffusers' random weights loaded into ours key for key. Before timing, the script checks that one
UNet forward, one DDIM step and a whole (5-step) sampling run agree numerically (same weights, same
noise). Then it times full 50-step DDIM sampling (eta = 0) at batch 1 and batch 16, interleaved
(ours, diffusers, ours, diffusers, ...), and reports the median of the per-round ratios
diffusers time / our time (> 1: ours is faster). One torch thread by default (``--threads``).

Two columns of ours: "ours" is the eager UNet, "ours_compiled" is ``sample(compile=True)`` (the UNet
through ``torch.compile``, one static-shape graph per batch size). Its compile time (the first call per
batch size) is measured once and reported, not counted in the rounds; ``--no-compile`` leaves it out.

    python benchmarks/ddim.py --json results/ddim.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
from _common import (
    add_json_arg,
    add_threads_arg,
    check_peer_versions,
    interleave,
    print_table,
    ratio_median,
    set_threads,
    write_json,
)

from genforge.models.diffusion import Diffusion, DiffusionConfig

BLOCKS = (64, 128, 128)
HEAD_DIM = 32


def build_pair(image_size: int, channels: int) -> tuple[Diffusion, torch.nn.Module, object]:
    """Our Diffusion and diffusers' UNet2DModel + DDIMScheduler with identical shapes and weights."""
    from diffusers import DDIMScheduler, UNet2DModel

    torch.manual_seed(0)
    theirs = UNet2DModel(
        sample_size=image_size,
        in_channels=channels,
        out_channels=channels,
        block_out_channels=BLOCKS,
        layers_per_block=2,
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=HEAD_DIM,
        norm_num_groups=32,
    ).eval()
    # diffusers' DDIMScheduler defaults: linear betas 1e-4..0.02, "leading" spacing, clip_sample=True
    scheduler = DDIMScheduler(num_train_timesteps=1000)
    ours = Diffusion(
        DiffusionConfig(
            dims=2,
            channels=channels,
            image_size=(image_size, image_size),
            base_channels=BLOCKS[0],
            channel_mults=tuple(c // BLOCKS[0] for c in BLOCKS),
            layers_per_block=2,
            attention_levels=(1,),
            mid_attention=True,
            attention_head_dim=HEAD_DIM,
            norm_groups=32,
            schedule="linear",
            timestep_spacing="leading",
            clip_sample=True,
        )
    ).eval()
    ours.unet.load_state_dict(theirs.state_dict(), strict=True)
    return ours, theirs, scheduler


def diffusers_sample(
    unet: torch.nn.Module,
    scheduler,
    n: int,
    shape: tuple,
    steps: int,
    seed: int,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """The DDIMPipeline loop without its image post-processing (so diffusers pays no extra work)."""
    g = torch.Generator(device=device).manual_seed(seed)
    with torch.inference_mode():
        x = torch.randn((n, *shape), generator=g, device=device)
        scheduler.set_timesteps(steps)
        for t in scheduler.timesteps:
            out = unet(x, t).sample
            x = scheduler.step(out, t, x, eta=0.0, generator=g).prev_sample
    return x


def check_equivalence(
    ours: Diffusion, theirs: torch.nn.Module, scheduler, steps: int, compile: bool = False
) -> dict[str, float]:
    """Same weights and inputs -> same UNet output, same DDIM steps, same (5-step) sample."""
    shape = ours.sample_shape
    g = torch.Generator().manual_seed(123)
    x = torch.randn((2, *shape), generator=g)
    t = torch.tensor([500, 80])
    with torch.inference_mode():
        a, b = ours.unet(x, t), theirs(x, t).sample
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    forward_err = (a - b).abs().max().item()
    with torch.inference_mode():  # one image: the single-image convolution paths (Winograd, oneDNN)
        a1, b1 = ours.unet(x[:1], t[:1]), theirs(x[:1], t[:1]).sample
    torch.testing.assert_close(a1, b1, rtol=1e-4, atol=1e-4)
    forward_b1_err = (a1 - b1).abs().max().item()

    sched = ours.make_scheduler("ddim")
    sched.set_timesteps(steps)
    scheduler.set_timesteps(steps)
    assert sched.timesteps.tolist() == scheduler.timesteps.tolist(), "timesteps differ"
    step_err = 0.0
    for t in (int(sched.timesteps[0]), int(sched.timesteps[steps // 2]), int(sched.timesteps[-1])):
        mine = sched.step(b, t, x).prev_sample
        ref = scheduler.step(b, t, x, eta=0.0).prev_sample
        torch.testing.assert_close(mine, ref, rtol=1e-5, atol=1e-5)
        step_err = max(step_err, (mine - ref).abs().max().item())

    # Whole sampling loops agree too, over a few steps: with random weights the 50-step map is chaotic
    # (in diffusers alone, a 1e-6 change of the starting noise moves the final sample by ~1), so a
    # 50-step comparison would measure that chaos, not a difference between the implementations.
    few = 5
    mine = ours.sample(1, steps=few, generator=torch.Generator().manual_seed(7))
    ref = diffusers_sample(theirs, scheduler, 1, shape, few, seed=7)
    sample_err = (mine - ref).abs().max().item()
    torch.testing.assert_close(mine, ref, rtol=1e-4, atol=1e-4)
    checks = {
        "unet_forward_max_abs_diff": forward_err,
        "unet_forward_b1_max_abs_diff": forward_b1_err,
        "ddim_step_max_abs_diff": step_err,
        "sample_5_steps_max_abs_diff": sample_err,
    }
    if compile:  # the compiled UNet at batch 1 (this call compiles it: timed, reported once)
        start = time.perf_counter()
        mine = ours.sample(1, steps=few, generator=torch.Generator().manual_seed(7), compile=True)
        checks["compile_s_b1"] = time.perf_counter() - start
        torch.testing.assert_close(mine, ref, rtol=1e-4, atol=1e-4)
        checks["compiled_sample_5_steps_max_abs_diff"] = (mine - ref).abs().max().item()
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--repeats", type=int, nargs="+", default=[9, 3], help="timed rounds per batch size")
    parser.add_argument(
        "--no-compile", action="store_true", help="leave out the compiled column (compiling takes minutes)"
    )
    add_threads_arg(parser)
    add_json_arg(parser)
    args = parser.parse_args(argv)
    set_threads(args.threads)
    import diffusers  # noqa: F401 - imported here so that the version check below sees it

    check_peer_versions()
    repeats = args.repeats + [args.repeats[-1]] * (len(args.batches) - len(args.repeats))

    ours, theirs, scheduler = build_pair(args.image_size, args.channels)
    compile = not args.no_compile
    checks = check_equivalence(ours, theirs, scheduler, args.steps, compile=compile)
    print("numerical check passed: " + ", ".join(f"{k}={v:.2e}" for k, v in checks.items()))

    shape = ours.sample_shape
    rows, result = (
        [],
        {
            "steps": args.steps,
            "shape": list(shape),
            "threads": args.threads,
            "block_out_channels": list(BLOCKS),
            "attention_head_dim": HEAD_DIM,
            **checks,
        },
    )
    for batch, reps in zip(args.batches, repeats, strict=True):
        fns = {
            "ours": lambda b=batch: ours.sample(
                b, steps=args.steps, generator=torch.Generator().manual_seed(0)
            ),
            "diffusers": lambda b=batch: diffusers_sample(theirs, scheduler, b, shape, args.steps, seed=0),
        }
        if compile:
            fns["ours_compiled"] = lambda b=batch: ours.sample(
                b, steps=args.steps, generator=torch.Generator().manual_seed(0), compile=True
            )
            if f"compile_s_b{batch}" not in checks:  # compile this batch size once, outside the rounds
                start = time.perf_counter()
                ours.sample(batch, steps=1, compile=True)
                result[f"compile_s_b{batch}"] = time.perf_counter() - start
        cpu: dict[str, list[float]] = {}
        times = interleave(fns, repeats=reps, warmup=1, cpu_times=cpu)
        ratio = ratio_median(times["ours"], times["diffusers"])
        ratio_cpu = ratio_median(cpu["ours"], cpu["diffusers"])
        ours_s, theirs_s = statistics.median(times["ours"]), statistics.median(times["diffusers"])
        row = {
            "batch": batch,
            "rounds": reps,
            "ours_s": ours_s,
            "diffusers_s": theirs_s,
            "ms_per_step_ours": 1000 * ours_s / args.steps,
            "ms_per_step_diffusers": 1000 * theirs_s / args.steps,
            "ratio": ratio,
            "ratio_cpu": ratio_cpu,
        }
        if compile:
            comp_s = statistics.median(times["ours_compiled"])
            row["ours_compiled_s"] = comp_s
            row["ratio_compiled"] = ratio_median(times["ours_compiled"], times["diffusers"])
            row["ratio_compiled_cpu"] = ratio_median(cpu["ours_compiled"], cpu["diffusers"])
            result[f"ratio_compiled_cpu_vs_diffusers_b{batch}"] = row["ratio_compiled_cpu"]
            result[f"round_ratios_compiled_cpu_b{batch}"] = [
                d / o for o, d in zip(cpu["ours_compiled"], cpu["diffusers"], strict=True)
            ]
            result[f"ratio_compiled_vs_diffusers_b{batch}"] = row["ratio_compiled"]
            result[f"seconds_ours_compiled_b{batch}"] = comp_s
            result[f"round_ratios_compiled_b{batch}"] = [
                d / o for o, d in zip(times["ours_compiled"], times["diffusers"], strict=True)
            ]
        rows.append(row)
        result[f"ratio_vs_diffusers_b{batch}"] = ratio
        result[f"ratio_cpu_vs_diffusers_b{batch}"] = ratio_cpu
        result[f"round_ratios_cpu_b{batch}"] = [
            d / o for o, d in zip(cpu["ours"], cpu["diffusers"], strict=True)
        ]
        result[f"seconds_ours_b{batch}"] = ours_s
        result[f"seconds_diffusers_b{batch}"] = theirs_s
        result[f"round_ratios_b{batch}"] = [
            d / o for o, d in zip(times["ours"], times["diffusers"], strict=True)
        ]
        extra = ""
        if compile:
            extra = f", compiled {row['ratio_compiled']:.3f} (CPU time {row['ratio_compiled_cpu']:.3f})"
        print(f"batch {batch}: ratio {ratio:.3f} (CPU time {ratio_cpu:.3f}){extra}", flush=True)
    print(
        f"\nDDIM {args.steps} steps, {shape}, threads={args.threads} (ratio = diffusers time / our time; "
        "ratio_cpu and ratio_compiled_cpu from the thread's CPU time, robust to other jobs on shared cores)"
    )
    print_table(
        rows,
        ["batch", "rounds", "ours_s", "ours_compiled_s", "diffusers_s", "ms_per_step_ours"]
        + ["ms_per_step_diffusers", "ratio", "ratio_cpu", "ratio_compiled", "ratio_compiled_cpu"],
    )
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
