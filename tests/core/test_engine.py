"""The Trainer: learning happens, seeding, schedules, EMA, early stopping, GAN loop, checkpoints, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from engine_helpers import (
    TinyGAN,
    TinyGANConfig,
    TinyMLP,
    TinyMLPConfig,
    gan_data,
    regression_data,
    train_regressor,
)
from torch.utils.data import Dataset

import genforge
from genforge.checkpoints import CheckpointError
from genforge.devices import autocast_dtype, available_devices, pick_device, seed_everything
from genforge.errors import DataError, GenforgeError
from genforge.training import TrainConfig, Trainer, TrainResult
from genforge.training.ema import EMA
from genforge.training.engine import STATE_FILE
from genforge.training.state import read_trainer_state

HELPER = Path(__file__).with_name("engine_helpers.py")


def _mlp(seed: int = 0) -> TinyMLP:
    seed_everything(seed)
    return TinyMLP(TinyMLPConfig())


def _cfg(**kw) -> TrainConfig:
    base = dict(max_steps=150, batch_size=32, lr=1e-2, progress=False, device="cpu", val_every=50)
    return TrainConfig(**{**base, **kw})


def _mse(model: TinyMLP, data: tuple[torch.Tensor, torch.Tensor]) -> float:
    with torch.no_grad():
        return float(model.training_loss(data)["loss"])


def test_devices_policy() -> None:
    assert pick_device("cpu").type == "cpu"
    assert pick_device("auto").type in {"cpu", "cuda", "mps"}
    assert available_devices()[-1] == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(GenforgeError, match="CUDA is not available"):
            pick_device("cuda")
    with pytest.raises(GenforgeError, match="unknown device"):
        pick_device("tpu9")
    assert autocast_dtype(torch.device("cpu"), "auto") is None
    assert autocast_dtype(torch.device("cuda"), "auto") == torch.bfloat16
    with pytest.raises(GenforgeError, match="precision"):
        autocast_dtype(torch.device("cpu"), "fp8")


def test_likelihood_loop_learns_and_validates() -> None:
    x, y = regression_data()
    train, val = (x[:192], y[:192]), (x[192:], y[192:])
    model = _mlp()
    before = _mse(model, val)
    result = Trainer(_cfg()).fit(model, train, val_data=val)
    assert isinstance(result, TrainResult) and result.steps == 150 and result.seconds > 0
    assert result.best_val_loss is not None and result.best_val_loss < 0.25 * before
    assert _mse(model, val) == pytest.approx(result.best_val_loss, rel=1e-5)  # best weights restored
    vals = [h["val_loss"] for h in result.history if "val_loss" in h]
    assert len(vals) == 3  # steps 50, 100, 150
    assert result.history[-1]["step"] == 150 and {"loss", "mse", "lr"} <= set(result.history[-1])


def test_same_seed_same_weights_on_cpu() -> None:
    x, y = regression_data()
    states = []
    for seed in (0, 0, 1):
        model = _mlp(0)
        Trainer(_cfg(max_steps=30, seed=seed, val_every=None)).fit(model, (x, y))
        states.append(model.state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    assert not all(torch.equal(states[0][k], states[2][k]) for k in states[0])  # data order follows the seed


def test_dataset_input_and_epochs() -> None:
    x, y = regression_data(n=96)

    class Pairs(Dataset):
        def __len__(self) -> int:
            return len(x)

        def __getitem__(self, i: int):
            return x[i], y[i]

    result = Trainer(_cfg(epochs=2, max_steps=10_000, val_every=None)).fit(_mlp(), Pairs())
    assert result.steps == 2 * (96 // 32)


def test_data_errors() -> None:
    x, y = regression_data(n=64)
    with pytest.raises(DataError, match="different first dimensions"):
        Trainer(_cfg()).fit(_mlp(), (x, y[:10]))
    with pytest.raises(DataError, match="no full batch"):
        Trainer(_cfg(batch_size=128)).fit(_mlp(), (x, y))
    with pytest.raises(DataError, match="expected a Dataset"):
        Trainer(_cfg()).fit(_mlp(), "data.csv")
    with pytest.raises(GenforgeError, match="lr_schedule"):
        Trainer(_cfg(lr_schedule="step"))


def test_cosine_schedule_with_warmup() -> None:
    x, y = regression_data()
    result = Trainer(_cfg(max_steps=100, lr_schedule="cosine", warmup_steps=10, val_every=None)).fit(
        _mlp(), (x, y)
    )
    lrs = {h["step"]: h["lr"] for h in result.history}
    assert lrs[1] == pytest.approx(1e-3)  # first warm-up step: lr / 10
    assert lrs[10] == pytest.approx(1e-2)
    assert lrs[100] < 1e-5 and lrs[60] < lrs[30]


def test_early_stopping_restores_best_weights() -> None:
    # validation targets have the opposite sign: the better the fit, the worse the validation loss
    x, y = regression_data()
    xv, yv = regression_data(n=64, seed=1, sign=-1.0)
    model = _mlp()
    result = Trainer(_cfg(max_steps=400, val_every=10, patience=3)).fit(model, (x, y), val_data=(xv, yv))
    vals = [h["val_loss"] for h in result.history if "val_loss" in h]
    assert result.stopped_early and result.steps < 400
    assert len(vals) - 1 - vals.index(min(vals)) == 3  # stopped after exactly `patience` bad validations
    assert _mse(model, (xv, yv)) == pytest.approx(result.best_val_loss, rel=1e-5)


def test_ema_weights_are_copied_in(tmp_path: Path) -> None:
    ema = EMA(torch.nn.Linear(1, 1, bias=False), decay=0.9)
    target = torch.nn.Linear(1, 1, bias=False)
    start = float(ema.shadow["weight"])
    with torch.no_grad():
        target.weight.fill_(start + 1.0)
    ema.update(target)
    assert float(ema.shadow["weight"]) == pytest.approx(start + 0.1)

    x, y = regression_data()
    model = _mlp()
    Trainer(_cfg(max_steps=40, ema_decay=0.9, val_every=None, out_dir=tmp_path)).fit(model, (x, y))
    state = read_trainer_state(tmp_path / STATE_FILE)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, state["ema"][key])  # final weights are the EMA weights
    assert not torch.equal(state["model"]["net.0.weight"], state["ema"]["net.0.weight"])
    torch.testing.assert_close(
        genforge.load(tmp_path).state_dict()["net.0.weight"], state["ema"]["net.0.weight"]
    )


def test_adversarial_loop_learns_data_mean() -> None:
    seed_everything(0)
    model = TinyGAN(TinyGANConfig())
    data = gan_data()
    target = data.mean(0)
    with torch.no_grad():
        before = float((model.sample(1000).mean(0) - target).norm())
    cfg = _cfg(max_steps=250, lr=2e-3, lr_d=4e-3, betas=(0.5, 0.9), batch_size=64)
    result = Trainer(cfg).fit(model, data)
    with torch.no_grad():
        after = float((model.sample(1000).mean(0) - target).norm())
    assert after < 0.25 * before, (before, after)
    assert {"d_loss", "g_loss"} <= set(result.history[-1]) and result.best_val_loss is None
    assert result.steps == 250


def test_checkpoint_and_idempotent_resume(tmp_path: Path) -> None:
    x, y = regression_data()
    model = _mlp()
    cfg = _cfg(max_steps=40, checkpoint_every=15, out_dir=tmp_path, val_every=20)
    first = Trainer(cfg).fit(model, (x[:192], y[:192]), val_data=(x[192:], y[192:]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors", STATE_FILE]
    loaded = genforge.load(tmp_path)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in loaded.state_dict().items())
    again_model = _mlp(5)
    again = Trainer(cfg).fit(again_model, (x[:192], y[:192]), val_data=(x[192:], y[192:]))
    assert again.steps == 40 and again.history == first.history
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in again_model.state_dict().items())
    # resume=False starts over and overwrites
    fresh = Trainer(cfg, resume=False, max_steps=5).fit(_mlp(), (x, y))
    assert fresh.steps == 5 and read_trainer_state(tmp_path / STATE_FILE)["step"] == 5


def test_resume_into_another_model_is_a_clear_error(tmp_path: Path) -> None:
    x, y = regression_data()
    Trainer(_cfg(max_steps=3, out_dir=tmp_path)).fit(_mlp(), (x, y))
    other = TinyMLP(TinyMLPConfig(hidden=8))
    with pytest.raises(CheckpointError, match="does not fit"):
        Trainer(_cfg(max_steps=6, out_dir=tmp_path)).fit(other, (x, y))


def _run_helper(out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(HELPER), "train", str(out), "--steps", "60", "--checkpoint-every", "5", *extra]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_sigkill_then_rerun_resumes_and_matches_uninterrupted_run(tmp_path: Path) -> None:
    """Kill a slowed run after its first checkpoint, rerun it: it ends at max_steps with the same
    history and bit-identical weights as an uninterrupted run (data order, optimizer and RNG state
    are all restored, and the CPU run is deterministic)."""
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    victim = _run_helper(killed, "--delay", "0.05")
    try:
        torch.set_num_threads(1)  # like the subprocess, so the reference is bit-comparable
        train_regressor(clean, steps=60, checkpoint_every=5)  # uninterrupted reference, in-process
        deadline = time.monotonic() + 120
        while not (killed / STATE_FILE).exists():
            assert victim.poll() is None, victim.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.05)
        time.sleep(0.2)  # let it go on a little, so the kill can also land mid-write
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait()
    assert victim.returncode == -signal.SIGKILL
    interrupted_at = read_trainer_state(killed / STATE_FILE)["step"]
    assert 0 < interrupted_at < 60, interrupted_at

    rerun = _run_helper(killed)
    _, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err.decode()[-2000:]
    resumed = json.loads((killed / "result.json").read_text())
    uninterrupted = json.loads((clean / "result.json").read_text())
    assert resumed["steps"] == 60
    assert [h["step"] for h in resumed["history"]] == list(range(1, 61))
    assert resumed["history"] == uninterrupted["history"]
    assert resumed["hash"] == uninterrupted["hash"]


def test_real_vae_learns_and_round_trips(tmp_path: Path) -> None:
    vae_mod = pytest.importorskip("genforge.models.vae")
    g = torch.Generator().manual_seed(0)
    data = torch.randn(320, 2, generator=g) @ torch.randn(2, 8, generator=g) + 0.1 * torch.randn(
        320, 8, generator=g
    )
    seed_everything(0)
    model = vae_mod.VAE(vae_mod.VAEConfig(kind="mlp", in_features=8, latent_dim=2, hidden=(32,)))
    cfg = _cfg(max_steps=200, lr=3e-3, val_every=100, out_dir=tmp_path, checkpoint_every=100)
    result = Trainer(cfg).fit(model, data[:256], val_data=data[256:])
    first_loss = result.history[0]["loss"]
    assert result.best_val_loss < first_loss - 0.5, (first_loss, result.best_val_loss)
    loaded = genforge.load(tmp_path)
    torch.testing.assert_close(loaded.reconstruct(data[256:]), model.eval().reconstruct(data[256:]))


def test_real_gan_trains_with_the_adversarial_loop() -> None:
    gan_mod = pytest.importorskip("genforge.models.gan")
    seed_everything(0)
    config = gan_mod.GANConfig(
        kind="tabular", in_features=2, loss="ns", n_critic=1, hidden=(32, 32), latent_dim=4
    )
    model = gan_mod.GAN(config)
    data = gan_data()
    with torch.no_grad():
        before = float((model.sample(1000).mean(0) - data.mean(0)).norm())
    cfg = _cfg(max_steps=300, lr=2e-3, betas=(0.5, 0.9), batch_size=64)
    result = Trainer(cfg).fit(model, data)
    with torch.no_grad():
        after = float((model.sample(1000).mean(0) - data.mean(0)).norm())
    assert after < 0.5 * before, (before, after)
    assert {"d_loss", "g_loss"} <= set(result.history[-1])


def test_validation_does_not_change_the_training_run(tmp_path: Path) -> None:
    vae_mod = pytest.importorskip("genforge.models.vae")  # stochastic loss: draws from the RNG
    data = torch.randn(96, 6, generator=torch.Generator().manual_seed(0))
    raw, vals = [], []
    for i, val_every in enumerate((None, 5, 5)):
        seed_everything(0)
        model = vae_mod.VAE(vae_mod.VAEConfig(kind="mlp", in_features=6, latent_dim=2, hidden=(16,)))
        cfg = _cfg(max_steps=20, val_every=val_every, out_dir=tmp_path / str(i))
        result = Trainer(cfg).fit(model, data[:64], val_data=data[64:] if val_every else None)
        raw.append(read_trainer_state(tmp_path / str(i) / STATE_FILE)["model"])
        vals.append([h["val_loss"] for h in result.history if "val_loss" in h])
    assert all(torch.equal(raw[0][k], raw[1][k]) for k in raw[0])
    assert vals[1] == vals[2] and len(vals[1]) == 4  # validation noise is fixed: repeatable
