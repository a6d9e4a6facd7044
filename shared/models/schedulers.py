"""Noise schedules and samplers for diffusion models, kept apart from the network (diffusers style).

A *schedule* (``NoiseSchedule``) is the forward process: betas, ``alphas_cumprod`` and the algebra that
links a clean sample x0, the noise eps, the noisy sample x_t and the v target (Salimans & Ho, 2022).
A *scheduler* walks the reverse process with the small API every diffusers scheduler shares::

    scheduler.set_timesteps(50)
    for t in scheduler.timesteps:
        x = scheduler.step(model(x, t), t, x).prev_sample

``DDPMScheduler`` is ancestral sampling (Ho et al., 2020) and ``DDIMScheduler`` the implicit sampler
(Song et al., 2021; ``eta=0`` is deterministic, ``eta=1`` matches DDPM's variance); both accept any
number of steps from 1 to ``num_train_timesteps``. Per-step coefficients are precomputed as Python
floats in ``set_timesteps``, so a step costs a handful of fused tensor ops and no scalar tensor math:
at batch 1 that per-step overhead is a visible part of sampling time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

SCHEDULES = ("linear", "cosine")
PREDICTIONS = ("epsilon", "v", "sample")
SPACINGS = ("leading", "trailing", "linspace")


def make_betas(
    schedule: str, num_train_timesteps: int, beta_start: float = 1e-4, beta_end: float = 0.02
) -> torch.Tensor:
    """Betas (float64) of a ``"linear"`` (Ho et al.) or ``"cosine"`` (Nichol & Dhariwal, 2021) schedule.

    Cosine: alpha_bar(t) = f(t) / f(0), f(t) = cos(((t / T) + s) / (1 + s) * pi / 2) ** 2 with s = 0.008,
    beta_t = min(1 - alpha_bar(t) / alpha_bar(t - 1), 0.999) (the clip avoids a singular last step).
    """
    if num_train_timesteps < 1:
        raise ValueError(f"num_train_timesteps must be >= 1, got {num_train_timesteps}")
    if schedule == "linear":
        return torch.linspace(beta_start, beta_end, num_train_timesteps, dtype=torch.float64)
    if schedule == "cosine":
        s = 0.008
        steps = torch.arange(num_train_timesteps + 1, dtype=torch.float64) / num_train_timesteps
        f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
        alpha_bar = f / f[0]
        return (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=0.999)
    raise ValueError(f"unknown noise schedule {schedule!r}; expected one of {SCHEDULES}")


class NoiseSchedule:
    """The forward process q(x_t | x0) and the conversions between eps, x0 and v predictions.

    ``alphas_cumprod`` is kept in float64 for the scalar coefficients and as a float32 tensor for
    batched training-time gathers (moved to the timesteps' device on first use).
    """

    def __init__(
        self,
        schedule: str = "linear",
        num_train_timesteps: int = 1000,
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
    ) -> None:
        self.schedule = schedule
        self.num_train_timesteps = num_train_timesteps
        self.betas64 = make_betas(schedule, num_train_timesteps, beta_start, beta_end)
        self.alphas_cumprod64 = torch.cumprod(1.0 - self.betas64, dim=0)
        self.betas = self.betas64.float()
        self.alphas_cumprod = self.alphas_cumprod64.float()

    def _coefs(self, t: torch.Tensor, ndim: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.alphas_cumprod.device != t.device:  # follow the data's device, once
            self.alphas_cumprod = self.alphas_cumprod.to(t.device)
        a = self.alphas_cumprod[t.long()]
        shape = (-1,) + (1,) * (ndim - 1)
        return a.sqrt().view(shape), (1 - a).sqrt().view(shape)

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, for a batch of integer timesteps ``t``."""
        sa, sb = self._coefs(t, x0.ndim)
        return sa * x0 + sb * noise

    def velocity(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The v target: v = sqrt(abar_t) eps - sqrt(1 - abar_t) x0."""
        sa, sb = self._coefs(t, x0.ndim)
        return sa * noise - sb * x0

    def target(self, prediction: str, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """What a network predicting ``prediction`` should output for (x0, noise, t)."""
        if prediction == "epsilon":
            return noise
        if prediction == "v":
            return self.velocity(x0, noise, t)
        if prediction == "sample":
            return x0
        raise ValueError(f"unknown prediction type {prediction!r}; expected one of {PREDICTIONS}")

    def to_x0_eps(
        self, prediction: str, model_output: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Turn a model output into (x0, eps) estimates given x_t (batched timesteps)."""
        sa, sb = self._coefs(t, x_t.ndim)
        return convert_prediction(prediction, model_output, x_t, sa, sb)


def convert_prediction(
    prediction: str,
    model_output: torch.Tensor,
    sample: torch.Tensor,
    sqrt_alpha: float | torch.Tensor,
    sqrt_one_minus: float | torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(x0, eps) from an epsilon, v or sample prediction at a noise level sqrt(abar), sqrt(1 - abar)."""
    if prediction == "epsilon":
        eps = model_output
        x0 = (sample - sqrt_one_minus * eps) / sqrt_alpha
    elif prediction == "v":
        x0 = sqrt_alpha * sample - sqrt_one_minus * model_output
        eps = sqrt_alpha * model_output + sqrt_one_minus * sample
    elif prediction == "sample":
        x0 = model_output
        eps = (sample - sqrt_alpha * x0) / sqrt_one_minus
    else:
        raise ValueError(f"unknown prediction type {prediction!r}; expected one of {PREDICTIONS}")
    return x0, eps


@dataclass
class SchedulerOutput:
    """Result of one reverse step: the less noisy sample and the scheduler's current x0 estimate."""

    prev_sample: torch.Tensor
    pred_original_sample: torch.Tensor


class _Scheduler:
    """Shared parts of the samplers: the schedule, timestep spacing and per-step bookkeeping."""

    def __init__(
        self,
        num_train_timesteps: int = 1000,
        beta_schedule: str = "linear",
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
        prediction_type: str = "epsilon",
        timestep_spacing: str = "trailing",
        clip_sample: bool = False,
        clip_sample_range: float = 1.0,
    ) -> None:
        if prediction_type not in PREDICTIONS:
            raise ValueError(f"unknown prediction type {prediction_type!r}; expected one of {PREDICTIONS}")
        if timestep_spacing not in SPACINGS:
            raise ValueError(f"unknown timestep spacing {timestep_spacing!r}; expected one of {SPACINGS}")
        self.schedule = NoiseSchedule(beta_schedule, num_train_timesteps, beta_start, beta_end)
        self.num_train_timesteps = num_train_timesteps
        self.prediction_type = prediction_type
        self.timestep_spacing = timestep_spacing
        self.clip_sample = clip_sample
        self.clip_sample_range = clip_sample_range
        self.alphas_cumprod = self.schedule.alphas_cumprod
        self.num_inference_steps: int | None = None
        self.timesteps = torch.empty(0, dtype=torch.long)
        self._index: dict[int, int] = {}
        self._prev: list[int] = []

    @property
    def init_noise_sigma(self) -> float:
        return 1.0

    def _spaced_timesteps(self, n: int) -> list[int]:
        T = self.num_train_timesteps
        if self.timestep_spacing == "leading":
            ratio = T // n
            ts = [i * ratio for i in range(n)][::-1]
        elif self.timestep_spacing == "trailing":
            ratio = T / n
            ts = [round(T - i * ratio) - 1 for i in range(n)]
        else:  # linspace
            ts = [round(v) for v in torch.linspace(0, T - 1, n, dtype=torch.float64).tolist()][::-1]
        return ts

    def set_timesteps(self, num_inference_steps: int, device: torch.device | str | None = None) -> None:
        """Choose ``num_inference_steps`` timesteps (descending) and precompute each step's coefficients.

        Each step goes from its timestep to the next one in the list (the last goes to "clean"),
        so every step count from 1 to ``num_train_timesteps`` is valid.
        """
        n = int(num_inference_steps)
        if not 1 <= n <= self.num_train_timesteps:
            raise ValueError(f"num_inference_steps must be between 1 and {self.num_train_timesteps}, got {n}")
        ts = self._spaced_timesteps(n)
        if len(set(ts)) != n:
            raise ValueError(f"timestep spacing {self.timestep_spacing!r} gives repeated timesteps for n={n}")
        self.num_inference_steps = n
        self.timesteps = torch.tensor(ts, dtype=torch.long, device=device)
        self._index = {t: i for i, t in enumerate(ts)}
        self._prev = ts[1:] + [-1]
        self._precompute(ts, self._prev)

    def _precompute(self, ts: list[int], prev: list[int]) -> None:
        raise NotImplementedError

    def _step_index(self, timestep: int | torch.Tensor) -> int:
        if self.num_inference_steps is None:
            raise RuntimeError("call set_timesteps(n) before step()")
        t = int(timestep)
        try:
            return self._index[t]
        except KeyError:
            raise ValueError(
                f"timestep {t} is not one of the {self.num_inference_steps} set timesteps"
            ) from None

    def _x0_eps(
        self, model_output: torch.Tensor, sample: torch.Tensor, sa: float, sb: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x0, eps = convert_prediction(self.prediction_type, model_output, sample, sa, sb)
        if self.clip_sample:  # as diffusers: clip the x0 estimate, keep the model's eps
            x0 = x0.clamp(-self.clip_sample_range, self.clip_sample_range)
        return x0, eps

    def add_noise(self, original: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        return self.schedule.add_noise(original, noise, timesteps)


def randn(
    shape: tuple[int, ...] | torch.Size,
    generator: torch.Generator | None,
    device: torch.device | str,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Standard normal noise drawn on the generator's device (so a CPU generator works for a CUDA
    model and gives the same numbers on every device), then moved to ``device``."""
    gen_device = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=gen_device, dtype=dtype).to(device)


def _noise_like(sample: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return randn(sample.shape, generator, sample.device, sample.dtype)


class DDIMScheduler(_Scheduler):
    """DDIM (Song et al., 2021): x_prev = sqrt(abar_prev) x0 + sqrt(1 - abar_prev - sigma^2) eps + sigma z.

    sigma = eta * sqrt((1 - abar_prev) / (1 - abar_t)) * sqrt(1 - abar_t / abar_prev). The final step goes
    to abar = 1 (diffusers' ``set_alpha_to_one=True``), i.e. it returns the x0 estimate.
    """

    def _precompute(self, ts: list[int], prev: list[int]) -> None:
        ac = self.schedule.alphas_cumprod64.tolist()
        self._a = [ac[t] for t in ts]
        self._a_prev = [ac[p] if p >= 0 else 1.0 for p in prev]

    def step(
        self,
        model_output: torch.Tensor,
        timestep: int | torch.Tensor,
        sample: torch.Tensor,
        eta: float = 0.0,
        generator: torch.Generator | None = None,
        variance_noise: torch.Tensor | None = None,
    ) -> SchedulerOutput:
        """One reverse step from ``timestep`` to the next set timestep."""
        i = self._step_index(timestep)
        a, a_prev = self._a[i], self._a_prev[i]
        sa, sb = math.sqrt(a), math.sqrt(1.0 - a)
        x0, eps = self._x0_eps(model_output, sample, sa, sb)
        var = (1.0 - a_prev) / (1.0 - a) * (1.0 - a / a_prev) if a < 1.0 else 0.0
        std = eta * math.sqrt(max(var, 0.0))
        prev = math.sqrt(a_prev) * x0 + math.sqrt(max(1.0 - a_prev - std * std, 0.0)) * eps
        if std > 0.0:
            noise = variance_noise if variance_noise is not None else _noise_like(sample, generator)
            prev = prev + std * noise
        return SchedulerOutput(prev, x0)


class DDPMScheduler(_Scheduler):
    """Ancestral DDPM sampling (Ho et al., 2020) with the posterior q(x_prev | x_t, x0) between any two
    set timesteps; variance "fixed_small" (the posterior variance), as in diffusers' default."""

    def _precompute(self, ts: list[int], prev: list[int]) -> None:
        ac = self.schedule.alphas_cumprod64.tolist()
        self._coef: list[tuple[float, float, float, float, float]] = []
        for t, p in zip(ts, prev, strict=True):
            a, a_prev = ac[t], (ac[p] if p >= 0 else 1.0)
            beta = 1.0 - a / a_prev
            c_x0 = math.sqrt(a_prev) * beta / (1.0 - a)
            c_xt = math.sqrt(1.0 - beta) * (1.0 - a_prev) / (1.0 - a)
            var = max((1.0 - a_prev) / (1.0 - a) * beta, 1e-20) if p >= 0 else 0.0
            self._coef.append((math.sqrt(a), math.sqrt(1.0 - a), c_x0, c_xt, math.sqrt(var)))

    def step(
        self,
        model_output: torch.Tensor,
        timestep: int | torch.Tensor,
        sample: torch.Tensor,
        generator: torch.Generator | None = None,
        variance_noise: torch.Tensor | None = None,
        eta: float | None = None,
    ) -> SchedulerOutput:
        """One ancestral step; ``eta`` is accepted (and ignored) so samplers are interchangeable."""
        i = self._step_index(timestep)
        sa, sb, c_x0, c_xt, std = self._coef[i]
        x0, _ = self._x0_eps(model_output, sample, sa, sb)
        prev = c_x0 * x0 + c_xt * sample
        if std > 0.0:
            noise = variance_noise if variance_noise is not None else _noise_like(sample, generator)
            prev = prev + std * noise
        return SchedulerOutput(prev, x0)


SCHEDULERS = {"ddim": DDIMScheduler, "ddpm": DDPMScheduler}


def make_scheduler(name: str, **kwargs: object) -> _Scheduler:
    """Build a scheduler by name ("ddim" or "ddpm") with the shared keyword arguments."""
    try:
        cls = SCHEDULERS[name]
    except KeyError:
        raise ValueError(f"unknown sampler {name!r}; expected one of {tuple(SCHEDULERS)}") from None
    return cls(**kwargs)  # type: ignore[arg-type]
