"""Noise schedules and the DDPM/DDIM samplers: schedule properties, prediction conversions, the
noise-oracle (exact recovery of a known x0), any step count, and step-for-step agreement with diffusers."""

from __future__ import annotations

import math

import pytest
import torch

from genforge.models.schedulers import (
    DDIMScheduler,
    DDPMScheduler,
    NoiseSchedule,
    convert_prediction,
    make_betas,
    make_scheduler,
)


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_alphas_cumprod_is_strictly_decreasing_in_unit_interval(schedule: str) -> None:
    ac = NoiseSchedule(schedule, 1000).alphas_cumprod64
    assert torch.all(ac[1:] < ac[:-1])
    assert 0.0 < ac[-1] < 0.01 and 0.99 < ac[0] < 1.0


def test_cosine_schedule_follows_nichol_dhariwal() -> None:
    T, s = 1000, 0.008
    betas = make_betas("cosine", T)
    assert betas.max() <= 0.999 and betas.min() > 0
    f = torch.cos((torch.arange(T + 1, dtype=torch.float64) / T + s) / (1 + s) * math.pi / 2) ** 2
    expected = (f / f[0])[1:]
    ac = torch.cumprod(1 - betas, 0)
    unclipped = slice(0, 990)  # the beta <= 0.999 clip only acts at the very end
    torch.testing.assert_close(ac[unclipped], expected[unclipped], rtol=1e-10, atol=1e-12)
    # the cosine schedule destroys information more slowly than the linear one in the middle
    assert ac[500] > NoiseSchedule("linear").alphas_cumprod64[500]


def test_linear_betas_endpoints_and_unknown_schedule() -> None:
    b = make_betas("linear", 1000, 1e-4, 0.02)
    assert b[0].item() == pytest.approx(1e-4) and b[-1].item() == pytest.approx(0.02)
    with pytest.raises(ValueError, match="unknown noise schedule"):
        make_betas("quadratic", 10)


@pytest.mark.parametrize("prediction", ["epsilon", "v", "sample"])
def test_prediction_conversions_round_trip(prediction: str) -> None:
    g = torch.Generator().manual_seed(0)
    sched = NoiseSchedule("cosine", 1000)
    x0 = torch.randn(6, 2, 5, generator=g, dtype=torch.float64)
    eps = torch.randn(6, 2, 5, generator=g, dtype=torch.float64)
    t = torch.tensor([0, 1, 250, 500, 900, 998])
    sched.alphas_cumprod = sched.alphas_cumprod64
    x_t = sched.add_noise(x0, eps, t)
    out = sched.target(prediction, x0, eps, t)
    x0_hat, eps_hat = sched.to_x0_eps(prediction, out, x_t, t)
    torch.testing.assert_close(x0_hat, x0, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(eps_hat, eps, rtol=1e-9, atol=1e-9)


def test_v_is_the_rotation_of_x0_and_eps() -> None:
    a = 0.3
    sa, sb = math.sqrt(a), math.sqrt(1 - a)
    x0, eps = torch.tensor([1.0]), torch.tensor([0.0])
    x_t = sa * x0 + sb * eps
    v = sa * eps - sb * x0
    x0_hat, eps_hat = convert_prediction("v", v, x_t, sa, sb)
    torch.testing.assert_close(x0_hat, x0)
    torch.testing.assert_close(eps_hat, eps)


def _oracle_run(scheduler, x0: torch.Tensor, steps: int, prediction: str, **step_kwargs) -> torch.Tensor:
    """Run the sampler with a model that knows the true noise of x_t for the known x0."""
    g = torch.Generator().manual_seed(1)
    ac = scheduler.schedule.alphas_cumprod64
    scheduler.set_timesteps(steps)
    t0 = int(scheduler.timesteps[0])
    x = math.sqrt(ac[t0]) * x0 + math.sqrt(1 - ac[t0]) * torch.randn(x0.shape, generator=g, dtype=x0.dtype)
    for t in scheduler.timesteps.tolist():
        sa, sb = math.sqrt(ac[t]), math.sqrt(1 - ac[t])
        eps = (x - sa * x0) / sb
        out = {"epsilon": eps, "v": sa * eps - sb * x0, "sample": x0}[prediction]
        x = scheduler.step(out, t, x, generator=g, **step_kwargs).prev_sample
    return x


@pytest.mark.parametrize("steps", [1, 7, 50, 333, 1000])
@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
@pytest.mark.parametrize("prediction", ["epsilon", "v"])
def test_ddim_eta0_with_true_noise_recovers_x0(steps: int, spacing: str, prediction: str) -> None:
    x0 = torch.linspace(-1, 1, 24, dtype=torch.float64).view(2, 3, 4)
    sched = DDIMScheduler(1000, "cosine", prediction_type=prediction, timestep_spacing=spacing)
    x = _oracle_run(sched, x0, steps, prediction, eta=0.0)
    torch.testing.assert_close(x, x0, rtol=0, atol=1e-8)


@pytest.mark.parametrize("steps", [1, 10, 250])
def test_ddpm_with_true_noise_recovers_x0_at_the_end(steps: int) -> None:
    x0 = torch.linspace(-1, 1, 12, dtype=torch.float64).view(1, 3, 4)
    sched = DDPMScheduler(1000, "linear", timestep_spacing="trailing")
    x = _oracle_run(sched, x0, steps, "epsilon")
    torch.testing.assert_close(x, x0, rtol=0, atol=1e-8)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 49, 50, 999, 1000])
@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
def test_any_step_count_gives_distinct_descending_timesteps(n: int, spacing: str) -> None:
    for cls in (DDIMScheduler, DDPMScheduler):
        s = cls(1000, timestep_spacing=spacing)
        s.set_timesteps(n)
        ts = s.timesteps.tolist()
        assert len(ts) == n and all(a > b for a, b in zip(ts, ts[1:], strict=False))
        assert 0 <= ts[-1] and ts[0] <= 999


def test_scheduler_errors_are_clear() -> None:
    s = DDIMScheduler(100)
    x = torch.zeros(1, 2)
    with pytest.raises(RuntimeError, match="set_timesteps"):
        s.step(x, 99, x)
    with pytest.raises(ValueError, match="between 1 and 100"):
        s.set_timesteps(101)
    s.set_timesteps(10)
    with pytest.raises(ValueError, match="not one of"):
        s.step(x, 5, x)
    with pytest.raises(ValueError, match="unknown sampler"):
        make_scheduler("euler")
    with pytest.raises(ValueError, match="prediction type"):
        DDIMScheduler(prediction_type="x")


def _diffusers_pair(kind: str, schedule: str, spacing: str, prediction: str):
    diffusers = pytest.importorskip("diffusers")
    beta = {"linear": "linear", "cosine": "squaredcos_cap_v2"}[schedule]
    pred = {"epsilon": "epsilon", "v": "v_prediction"}[prediction]
    common = dict(
        num_train_timesteps=1000,
        beta_schedule=beta,
        clip_sample=False,
        timestep_spacing=spacing,
        prediction_type=pred,
    )
    if kind == "ddim":
        theirs = diffusers.DDIMScheduler(set_alpha_to_one=True, **common)
        ours = DDIMScheduler(1000, schedule, prediction_type=prediction, timestep_spacing=spacing)
    else:
        theirs = diffusers.DDPMScheduler(**common)
        ours = DDPMScheduler(1000, schedule, prediction_type=prediction, timestep_spacing=spacing)
    return ours, theirs


@pytest.mark.parametrize(
    "schedule,spacing,prediction",
    [("linear", "leading", "epsilon"), ("cosine", "trailing", "v"), ("linear", "trailing", "v")],
)
@pytest.mark.parametrize("eta", [0.0, 0.6])
def test_ddim_step_matches_diffusers(schedule: str, spacing: str, prediction: str, eta: float) -> None:
    ours, theirs = _diffusers_pair("ddim", schedule, spacing, prediction)
    ours.set_timesteps(50)
    theirs.set_timesteps(50)
    assert ours.timesteps.tolist() == theirs.timesteps.tolist()
    g = torch.Generator().manual_seed(0)
    sample, out, noise = (torch.randn(2, 3, 8, 8, generator=g) for _ in range(3))
    for t in ours.timesteps.tolist()[::6] + [int(ours.timesteps[-1])]:
        a = ours.step(out, t, sample, eta=eta, variance_noise=noise)
        b = theirs.step(out, t, sample, eta=eta, variance_noise=noise)
        torch.testing.assert_close(a.prev_sample, b.prev_sample, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(a.pred_original_sample, b.pred_original_sample, rtol=1e-5, atol=1e-5)


def test_ddpm_step_matches_diffusers_with_the_same_generator() -> None:
    ours, theirs = _diffusers_pair("ddpm", "linear", "leading", "epsilon")
    ours.set_timesteps(20)
    theirs.set_timesteps(20)
    g = torch.Generator().manual_seed(0)
    sample, out = torch.randn(2, 3, 4, generator=g), torch.randn(2, 3, 4, generator=g)
    for t in ours.timesteps.tolist():
        a = ours.step(out, t, sample, generator=torch.Generator().manual_seed(t)).prev_sample
        b = theirs.step(out, t, sample, generator=torch.Generator().manual_seed(t)).prev_sample
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_clip_sample_clips_the_x0_estimate() -> None:
    s = DDIMScheduler(1000, clip_sample=True)
    s.set_timesteps(10)
    t = int(s.timesteps[0])
    out = s.step(torch.full((1, 4), -50.0), t, torch.zeros(1, 4))
    assert out.pred_original_sample.max() <= 1.0 and out.pred_original_sample.min() >= -1.0
