"""Sampling speed of the content suite's image model vs diffusers, on its own.

`genforge content evaluate image` measures this too, at the end of a long run (and on a busy machine a
single run's few rounds can land either side of the goal). Speed does not depend on the weights, so
this script builds the same two architectures as that evaluation — `ImageGenerator` (the core
Diffusion UNet, fitted for two steps so it can sample) and diffusers' `UNet2DModel` + `DDPMScheduler`
of identical size — and times the evaluation's own sampling job (one image per class, 50 DDIM steps,
classifier-free guidance) through `genforge.content.image.evaluate.sampling_speed`, interleaved, by
wall clock and by CPU time. One torch thread by default.

    python benchmarks/content_image_speed.py --rounds 10 --json image_speed.json
"""

from __future__ import annotations

import argparse

import torch
from _common import add_json_arg, add_threads_arg, check_peer_versions, print_table, set_threads, write_json


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10, help="timed rounds (after one warm-up)")
    parser.add_argument("--dataset", choices=("digits", "mnist"), default="digits")
    add_threads_arg(parser)
    add_json_arg(parser)
    args = parser.parse_args(argv)
    set_threads(args.threads)
    import diffusers  # noqa: F401 - imported here so that the version check below sees it

    from genforge.content.image.data import mnist_digits, sklearn_digits
    from genforge.content.image.evaluate import BLOCKS, DiffusersDDPM, sampling_speed
    from genforge.content.image.models import ImageGenerator

    check_peer_versions()
    data = sklearn_digits() if args.dataset == "digits" else mnist_digits()
    ours = ImageGenerator(
        base_channels=BLOCKS[0],
        channel_mults=tuple(c // BLOCKS[0] for c in BLOCKS),
        layers_per_block=1,
        attention=True,
        max_steps=2,
        batch_size=32,
        seed=0,
        progress=False,
        device="cpu",
    ).fit(data.x[:200], data.y[:200])
    torch.manual_seed(0)
    theirs = DiffusersDDPM(data.x.shape[-1], 10).eval()
    result = sampling_speed(ours, theirs, rounds=args.rounds)
    print_table(
        [
            {
                "dataset": args.dataset,
                "rounds": args.rounds,
                "ours_s": result["sample_seconds"]["ours"],
                "diffusers_s": result["sample_seconds"]["diffusers"],
                "ratio": result["sample_speed_ratio"],
                "ratio_cpu": result["sample_speed_ratio_cpu"],
            }
        ],
        ["dataset", "rounds", "ours_s", "diffusers_s", "ratio", "ratio_cpu"],
    )
    print("ratio = diffusers time / ours (median of interleaved rounds); goal >= 1.1 (issue 16)")
    write_json(args.json, {"dataset": args.dataset, "threads": args.threads, **result})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
